#!/usr/bin/env bash
# The main job: installs the package, then runs the algorithm comparison demo on the
# embedded default (memory store, simulated clock; no Redis needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-package.sh
python3 examples/compare_algorithms.py "$@"
