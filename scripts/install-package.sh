#!/usr/bin/env bash
# Builds and installs the package (C++ extension included) into the current Python.
# Usage: scripts/install-package.sh [extras]   e.g. scripts/install-package.sh dev
# The build dir (build/<wheel tag>) is reused, so a rebuild compiles only what changed; when
# nothing changed since the last install from this tree (same files, extras and Python), the
# install is skipped altogether (FORCE=1 reinstalls anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
scripts/install-system-deps.sh

digest=""
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    digest=$({ echo "$extras"; command -v python3
               git ls-files -co --exclude-standard -z | xargs -0 sha1sum; } | sha1sum | cut -c1-40)
fi
stamp="build/.installed-$(python3 -c 'import sys; print(sys.implementation.cache_tag)')"
if [ "${FORCE:-0}" != 1 ] && [ -n "$digest" ] && [ -f "$stamp" ] \
   && [ "$(cat "$stamp")" = "$digest" ] \
   && (cd / && python3 -c "import ratelimiter._core") 2>/dev/null; then
    echo "smart-ratelimiter: already installed from this tree${extras:+ [$extras]}; skipping"
    exit 0
fi

python3 -m pip install -q --disable-pip-version-check "scikit-build-core>=0.10" "pybind11>=2.12"
target="."
[ -n "$extras" ] && target=".[$extras]"
# --no-warn-conflicts: pip would otherwise check every installed distribution's requirements
# after the build (0.8 s CPU of a 2.7 s no-op reinstall in a venv over the system packages).
python3 -m pip install -q --disable-pip-version-check --no-build-isolation --no-warn-conflicts \
    "$target"
if [ -n "$digest" ]; then
    mkdir -p build && echo "$digest" > "$stamp"
fi
