#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests (and on their own by developers):
# mypy --strict on the package and examples, ruff on every Python file, and mypy's stubtest
# comparing the hand-written stubs of the C++ extension with the installed, compiled module.
# Assumes the package is installed (scripts/install-package.sh dev).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

echo "== lint: ruff"
python3 -m ruff check python examples tests bench
echo "== lint: mypy --strict"
python3 -m mypy --strict python/ratelimiter examples
echo "== lint: stubtest (python/ratelimiter/_core.pyi vs the compiled extension)"
# From outside the tree, so the installed package (with its extension) is what is checked.
(cd /tmp && python3 -m mypy.stubtest ratelimiter._core \
    --allowlist "$root/tests/python/stubtest_allowlist.txt")
