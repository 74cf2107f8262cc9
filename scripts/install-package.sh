#!/usr/bin/env bash
# Builds and installs the package (C++ extension included) into the current Python.
# Usage: scripts/install-package.sh [extras]   e.g. scripts/install-package.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
scripts/install-system-deps.sh
python3 -m pip install -q --disable-pip-version-check "scikit-build-core>=0.10" "pybind11>=2.12"
target="."
[ -n "$extras" ] && target=".[$extras]"
python3 -m pip install -q --disable-pip-version-check --no-build-isolation "$target"
