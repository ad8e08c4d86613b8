#!/usr/bin/env bash
# Install what vomage-dagster needs on a fresh Debian machine, idempotently:
# redis-server and postgresql from Debian, and the Python packages into ./.venv (re-installed only when
# setup.py changes). Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Postgres for `vomage cluster up` (Debian keeps the server binaries outside PATH).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || need_apt+=(postgresql)
# A real browser for the UI tests (tests/test_browser_ui.py): Debian's, since browsers that
# download themselves do not install here. Only for the tests: `BROWSER=1` (test.sh).
if [ "${BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
fi
# The container image (deploy/image/build.sh, tests/test_image.py): podman with runc named
# (podman alone picks crun, which cannot start containers here; deploy/image/containers.conf
# selects runc), debootstrap for the base, python3-venv for the wheels' venv of Debian's python3.
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need_apt+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_apt+=(debootstrap)
dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'ok installed' || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.vomage-installed
want="$(sha256sum setup.py | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: pip install -e '.[local,dev]' (a few minutes the first time)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[local,dev]'
  echo "$want" > "$stamp"
fi
