#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently:
# Debian packages (apt-get, as root) and a Python venv at $CFGD_VENV
# (default: <repo>/.venv) holding the real Prefect CLI and the Python client's
# build and test tools. Tests that need one of these fail, with a message
# naming this script, when it is missing; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CFGD_VENV:-$PWD/.venv}"

# --- Debian packages (the list grows with the suites: etcd-server, chromium) -
APT_PACKAGES=(bsdutils)  # bsdutils: `script`, the pseudo-terminal of cli/tests/terminal.rs; e.g. etcd-server chromium chromium-driver
need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "deps: missing Debian packages ${need_apt[*]} (run this script as root)" >&2
    exit 1
  fi
fi

# --- Python venv -------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -r .ci/requirements.txt
