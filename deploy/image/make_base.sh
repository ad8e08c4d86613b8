#!/usr/bin/env bash
# The base image of vomage-dagster, from Debian packages, without any container registry:
# debootstrap (minbase) a Debian bookworm root filesystem with Python 3.11, venv (pip by
# ensurepip), CA certificates, tzdata and tini; trim it, tar it, `podman import` it.
#
# Usage (as root):
#   deploy/image/make_base.sh [TAG]               debootstrap + tar + import
#   deploy/image/make_base.sh --import TAR [TAG]  only import a kept tar (a CI cache): the same
#                                                 tar gives the same image ID and digest
# TAG defaults to localhost/vomage-base:bookworm.
# Env: MIRROR (default http://deb.debian.org/debian), SECURITY_MIRROR, OUT (default
#      deploy/image/.build/base), CONTAINERS_CONF (default: containers.conf beside this script).
# Writes: $OUT/vomage-base-bookworm.tar(.sha256) and $OUT/base.env (BASE_TAG, BASE_REF,
#         BASE_DIGEST, BASE_ID, TAR_SHA256), what build.sh pins the Dockerfile's FROM with.
#
# Pinning: debootstrap is not bit-reproducible (two runs, two tars), so the result is pinned,
# not the recipe: keep the tar; `podman import` takes the tar file's mtime as the image's
# creation time (set below to the package database's time), so importing the same tar again
# gives the same digest, which `--build-arg BASE=localhost/vomage-base@sha256:<digest>` names.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
out=${OUT:-$here/.build/base}
mode=build
if [ "${1:-}" = "--import" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --import TAR [TAG]" >&2; exit 2; }
  mode=import
  tarball=$(realpath "$2")
  shift 2
fi
tag=${1:-localhost/vomage-base:bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
rootfs=$out/rootfs

[ "$(id -u)" = 0 ] || { echo "make_base.sh: run as root (debootstrap and podman's root store need it)" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/sbin
for tool in podman tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "make_base.sh: missing $tool (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
if [ "$mode" = build ] && ! command -v debootstrap >/dev/null; then
  echo "make_base.sh: missing debootstrap (scripts/bootstrap.sh installs it)" >&2; exit 1
fi
mkdir -p "$out"
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

start=$(date +%s.%N)
t_debootstrap=$start
if [ "$mode" = build ]; then
  tarball=$out/vomage-base-bookworm.tar
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  trap 'rm -rf "$rootfs"' EXIT

  # minbase = Priority: required + apt. python3 on bookworm is 3.11; python3-venv brings
  # ensurepip (a venv gets pip without python3-pip's setuptools/wheel/distutils);
  # ca-certificates for TLS to AWS, RDS and ElastiCache; tzdata for zoneinfo; tini as PID 1
  # (hands SIGTERM to the service, reaps the Celery and gRPC children).
  debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,tzdata,tini \
    bookworm "$rootfs" "$mirror"
  t_debootstrap=$(date +%s.%N)

  # Updates and security, for a stage that would apt-get on top of this base (none does).
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  # Later dpkg installs stay small, as in Debian's -slim images.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-vomage-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/01-vomage-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

  # What an image does not need: package lists, caches, logs, docs (copyright kept), man
  # pages, locales, the machine id, Python bytecode caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  find "$rootfs/usr/lib/python3" "$rootfs/usr/lib/python3.11" -name __pycache__ -type d -prune -exec rm -rf {} +
  : >"$rootfs/etc/machine-id"

  chroot "$rootfs" /usr/bin/python3 -c 'import sys, venv, ensurepip, ssl, zoneinfo; zoneinfo.ZoneInfo("Europe/Paris"); print("base: python", sys.version.split()[0], "pip", ensurepip.version())'
  [ -x "$rootfs/usr/bin/tini" ] || { echo "make_base.sh: tini is missing from the base" >&2; exit 1; }

  # Sorted names, numeric owners, no atime/ctime, mtimes clamped to the package database's
  # time; the tar file gets that time too, which `podman import` records as "created".
  epoch=$(stat -c %Y "$rootfs/var/lib/dpkg/status")
  tar --create --file "$tarball.part" --directory "$rootfs" --sort=name --numeric-owner \
    --mtime="@$epoch" --clamp-mtime --xattrs --xattrs-include='security.capability' \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
  touch -d "@$epoch" "$tarball.part"
  mv "$tarball.part" "$tarball"
  rm -rf "$rootfs"
fi
if [ "$mode" = import ]; then
  # The tar is kept in $out (a CI cache's copy is not touched), dated by its own content:
  # `podman import` records the file's mtime as "created", so a copy that lost its mtime
  # would otherwise give another digest.
  kept=$out/vomage-base-bookworm.tar
  if [ "$tarball" != "$(realpath -m "$kept")" ]; then
    cp "$tarball" "$kept.part" && mv "$kept.part" "$kept"
    tarball=$kept
  fi
  stamp=$(tar --list --verbose --utc --full-time --file "$tarball" ./var/lib/dpkg/status 2>/dev/null | awk '{ print $4 " " $5 }' || true)
  [ -n "$stamp" ] || { echo "make_base.sh: $tarball has no ./var/lib/dpkg/status: not a base tar" >&2; exit 1; }
  touch -d "@$(date -u -d "$stamp" +%s)" "$tarball"
fi
tar_sha=$(sha256sum "$tarball" | cut -d' ' -f1)
echo "$tar_sha  $(basename "$tarball")" >"$tarball.sha256"
t_tar=$(date +%s.%N)

# `podman import` moves the tag; the image it was on stays (other images may use it).
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/usr/bin/python3"]' \
  --message "debootstrap minbase bookworm, rootfs tar sha256 $tar_sha" \
  "$tarball" "$tag" >/dev/null
end=$(date +%s.%N)

digest=$(podman image inspect --format '{{.Digest}}' "$tag")
id=$(podman image inspect --format '{{.Id}}' "$tag")
size=$(podman image inspect --format '{{.Size}}' "$tag")
repo=${tag%:*}
cat >"$out/base.env" <<EOF
BASE_TAG=$tag
BASE_REF=$repo@$digest
BASE_DIGEST=$digest
BASE_ID=$id
TAR_SHA256=$tar_sha
EOF

if [ "$mode" = import ]; then
  echo "base: imported $(basename "$tarball") in $(elapsed "$end" "$start") s"
else
  echo "base: debootstrap $(elapsed "$t_debootstrap" "$start") s, trim+tar $(elapsed "$t_tar" "$t_debootstrap") s," \
    "import $(elapsed "$end" "$t_tar") s, total $(elapsed "$end" "$start") s"
fi
printf 'base: tar %s MB (sha256 %s), image %s MB, pinned as %s\n' \
  "$(( $(stat -c %s "$tarball") / 1000000 ))" "$tar_sha" "$(( size / 1000000 ))" "$repo@$digest"
