#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages incl. redis-server, the
# package with its dev extras), then runs the static checks (scripts/lint.sh), the Catch2
# tests (ctest) and pytest. The Redis tests start their own redis-server on a free loopback
# port. Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-package.sh dev

scripts/lint.sh

echo "== C++ tests (Catch2 via ctest)"
cmake -S . -B build/cpp -DCMAKE_BUILD_TYPE=Release \
    -DRATELIMITER_BUILD_TESTS=ON -DRATELIMITER_BUILD_PYTHON=OFF >/dev/null
cmake --build build/cpp -j2
ctest --test-dir build/cpp --output-on-failure -j2

echo "== Python tests (pytest)"
# Run from a directory without the source tree on sys.path, so the installed package
# (with its compiled extension) is what gets tested.
python3 -m pytest -q -p no:cacheprovider "$@" tests/python
