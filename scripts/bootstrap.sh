#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need on a fresh Debian machine:
# Debian packages (when missing, and only if we are root) and the project's venv in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the dashboard's browser tests drive Debian's /usr/bin/chromium through Playwright
# (never `playwright install`, which downloads its own browser); fonts-noto-cjk so that the
# Chinese dashboard renders (and its test screenshots show) real glyphs, not empty boxes.
DEB_PACKAGES=(mosquitto mosquitto-clients chromium fonts-noto-cjk systemd postgresql)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    if [[ " ${missing[*]} " == *" chromium "* ]]; then
      echo "bootstrap: chromium is needed by the dashboard tests in tests/browser (/usr/bin/chromium)" >&2
    fi
    echo "bootstrap: run 'sudo apt-get install ${missing[*]}' and try again" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$candidate
      break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "bootstrap: Python 3.11 or newer is needed (apt-get install python3 python3-venv)" >&2
  exit 1
fi

stamp=.venv/.installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then
  exit 0
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
echo "bootstrap: installing Python packages into .venv"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v -e '^WARNING: Location' -e '^ *$' || true
.venv/bin/python -c 'import pymodbus, paho.mqtt, pydantic, structlog, pytest' \
  || { echo "bootstrap: the Python packages did not install" >&2; exit 1; }
echo "$want" > $stamp
