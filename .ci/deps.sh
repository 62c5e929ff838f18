#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently:
# Debian packages (apt-get, as root) and a Python venv at $CFGD_VENV
# (default: <repo>/.venv) holding the real Prefect CLI, the Python client
# (python/, installed from the checkout) with its build and test tools, and
# buf (from npm, under $VENV/buf) for linting proto/. Tests that need one of these fail, with a message
# naming this script, when it is missing; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CFGD_VENV:-$PWD/.venv}"

# --- Debian packages (the list grows with the suites: etcd-server, chromium) -
APT_PACKAGES=(etcd-server etcd-client bsdutils)  # etcd: cfgd-etcd and the fleet suites start real clusters; bsdutils: `script`, the pseudo-terminal of cli/tests/terminal.rs; later: chromium chromium-driver
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
# The Python client, built from proto/ (its stubs are generated at build time).
"$VENV/bin/python" -m pip install -q ./python

# --- buf (npm), for `buf lint` of proto/ -------------------------------------
BUF_VERSION=1.75.0
if [ "$("$VENV/buf/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  npm install --silent --no-audit --no-fund --prefix "$VENV/buf" "@bufbuild/buf@$BUF_VERSION" >/dev/null
fi
