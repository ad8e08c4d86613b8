#!/usr/bin/env bash
# Build the one image of every vomage-dagster service (deploy/image/README.md), as root on
# Debian 12, with no container registry and no network inside the build:
#   1. the base (make_base.sh): reused when its pinned digest is in podman's store, else
#      imported from a kept tar (.build/base/, or BASE_TAR), else made by debootstrap;
#   2. on the host, the project's wheel and its production dependencies' wheels (no
#      extras), resolved by a venv of Debian's /usr/bin/python3 (the image's Python, so
#      the environment markers agree) and constrained to the dev venv's `pip freeze` (the
#      versions the tests ran with);
#   3. `podman build --pull=never --network=none` with BASE=<base>@sha256:<digest>.
# Usage: deploy/image/build.sh [TAG]      (default localhost/vomage-dagster:latest)
# Env:   BASE_TAG (default localhost/vomage-base:bookworm), BASE_TAR (a kept base tar),
#        DEV_PYTHON (default .venv/bin/python: its `pip freeze` is the constraints),
#        CONTAINERS_CONF (default deploy/image/containers.conf), BUILD_ARGS (more podman args).
# Writes only deploy/image/.build/ (git-ignored), podman's store and pip's cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$here/.build
tag=${1:-localhost/vomage-dagster:latest}
base_tag=${BASE_TAG:-localhost/vomage-base:bookworm}
dev_python=${DEV_PYTHON:-$repo/.venv/bin/python}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
PATH=$PATH:/usr/sbin:/sbin

fail() { echo "build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (podman's root store; debootstrap for the base)"
command -v podman >/dev/null || fail "podman is not installed (scripts/bootstrap.sh installs podman and runc)"
[ -x /usr/bin/python3 ] || fail "Debian's /usr/bin/python3 is missing"
[ -x "$dev_python" ] || fail "no dev venv at $dev_python (run scripts/bootstrap.sh): its pip freeze pins the versions"

mkdir -p "$build/tmp"
export TMPDIR=$build/tmp  # pip's and podman's scratch space: inside the repo, removed at the end
trap 'rm -rf "$build/tmp"' EXIT
exec 9>"$build/lock"
flock 9  # one build of this clone at a time (two test sessions may start one together)
now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
start=$(now)

# ---- 1. the base ----
t=$(now)
base_dir=$build/base
kept_tar=$base_dir/vomage-base-bookworm.tar
base_ref() { (. "$base_dir/base.env" && echo "$BASE_REF"); }
if [ -f "$base_dir/base.env" ] && podman image exists "$(base_ref)"; then
  echo "base: reusing $(base_ref)"
else
  if [ -f "$kept_tar" ] || [ -n "${BASE_TAR:-}" ]; then
    [ -f "$kept_tar" ] || kept_tar=$BASE_TAR  # make_base.sh keeps a copy in .build/base
    OUT=$base_dir "$here/make_base.sh" --import "$kept_tar" "$base_tag"
  else
    OUT=$base_dir "$here/make_base.sh" "$base_tag"
  fi
fi
base=$(base_ref)
t_base=$(elapsed "$t")

# ---- 2. the build context: wheels made on the host ----
t=$(now)
venv=$build/venv-wheels
[ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv "$venv"
host_py=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
image_py=$(podman run --rm --pull=never --network=none "$base" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
[ "$host_py" = "$image_py" ] || fail "the wheels' Python ($host_py, /usr/bin/python3) differs from the base's ($image_py)"

ctx=$build/context
src=$build/src  # a copy of the sources: `pip wheel` writes build/ and *.egg-info beside them
# Everything but the dependencies' wheels is made afresh; those are kept while the
# requirements, the constraints and the Python that resolved them stay the same.
find "$ctx" -mindepth 1 -maxdepth 1 -not -name wheels -not -name wheels.key -exec rm -rf {} + 2>/dev/null || true
rm -rf "$src"
mkdir -p "$ctx/wheels" "$ctx/project" "$src"
cp -a "$repo/setup.py" "$repo/pyproject.toml" "$repo/README.md" "$repo/vomage_dagster" "$src/"
find "$src" -name __pycache__ -type d -prune -exec rm -rf {} +
cp "$repo/deploy/dagster.yaml" "$ctx/dagster.yaml"
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ] || revision=$revision-dirty

# The versions the tests ran with; the image gets only the pins of what was resolved (below),
# so a dev-only package installed in the dev venv does not rebuild the dependencies' layer.
dev_freeze=$build/dev-constraints.txt
"$dev_python" -m pip freeze --exclude-editable | { grep -v -i '^vomage[-_]dagster' || true; } >"$dev_freeze"
# Entries dated to the last commit: the same source gives the same wheel, and the same layer.
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 315532800) \
  "$venv/bin/pip" wheel --quiet --no-deps --wheel-dir "$ctx/project" "$src"
rm -rf "$src"
wheel=$(echo "$ctx"/project/vomage_dagster-*.whl)
[ -f "$wheel" ] || fail "no project wheel in $ctx/project"
# The production requirements: the wheel's Requires-Dist without the extras ([local], [dev]).
"$venv/bin/python" - "$wheel" >"$ctx/requirements.txt" <<'EOF'
import sys, zipfile
whl = zipfile.ZipFile(sys.argv[1])
names = whl.namelist()
if "vomage_dagster/app/page.html" not in names:
    sys.exit("build.sh: the live view's page.html is not in the project's wheel (package_data)")
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
for line in whl.read(meta).decode().splitlines():
    if line.startswith("Requires-Dist:"):
        req = line.split(":", 1)[1].strip()
        if "extra ==" not in req.partition(";")[2]:
            print(req)
EOF
key=$(cat "$ctx/requirements.txt" "$dev_freeze" <(echo "$host_py") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$ctx/wheels.key" 2>/dev/null)" != "$key" ]; then
  rm -rf "$ctx/wheels" "$ctx/wheels.key" && mkdir "$ctx/wheels"
  "$venv/bin/pip" wheel --quiet --wheel-dir "$ctx/wheels" --requirement "$ctx/requirements.txt" \
    --constraint "$dev_freeze" 2> >(grep -v '^WARNING: Location' >&2)
  echo "$key" >"$ctx/wheels.key"
else
  echo "context: the dependencies' wheels are unchanged (same requirements, dev venv, Python)"
fi
: >"$ctx/constraints.txt"
for f in "$ctx"/wheels/*; do
  case $(basename "$f") in
    *.whl) basename "$f" | cut -d- -f1,2 | sed 's/-/==/' >>"$ctx/constraints.txt" ;;  # name==version
    *) fail "not a wheel in the context: $f" ;;
  esac
done
t_wheels=$(elapsed "$t")
echo "context: $(ls "$ctx/wheels" | wc -l) dependency wheels ($(du -sm "$ctx/wheels" | cut -f1) MB) + $(basename "$wheel"), in $t_wheels s"

# ---- 3. the image ----
t=$(now)
# shellcheck disable=SC2086  # BUILD_ARGS: several words on purpose
podman build --pull=never --network=none --layers ${BUILD_ARGS:-} \
  --build-arg BASE="$base" --build-arg REVISION="$revision" \
  -f "$here/Dockerfile" -t "$tag" "$ctx"
t_image=$(elapsed "$t")

size=$(podman image inspect --format '{{.Size}}' "$tag")
id=$(podman image inspect --format '{{.Id}}' "$tag")
echo "image: $tag ${id:0:12}, $(( size / 1000000 )) MB, base $base"
echo "time: base $t_base s, wheels $t_wheels s, podman build $t_image s, total $(elapsed "$start") s"
