#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

# make: GCC runs the extension's parallel LTO link jobs through it (CMakeLists.txt).
packages=(g++ make cmake pkg-config libhiredis-dev libsqlite3-dev catch2 redis-server openssl)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tests start their own redis-server; the packaged service is not needed.
if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
