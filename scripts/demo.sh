#!/usr/bin/env bash
# The main job: installs the package, then runs the algorithm comparison demo on the
# embedded default (memory store, simulated clock; no Redis needed): prints the table and
# writes the chart to ./simulation.svg (pass --out FILE to choose another place or format).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-package.sh
python3 examples/compare_algorithms.py --out simulation.svg "$@"
