#!/usr/bin/env bash
# Create .venv and install kubeingest with the default (sentence-transformers) backend.
# EXTRAS=st,test scripts/install.sh adds the test tools (bench: the benchmarks' peer). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-st}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned (==2.13.0) in the `st` extra: an unpinned torch pulls GBs of CUDA wheels.
# constraints.txt holds the exact versions CI tests; the cpu image installs the same.
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[${EXTRAS}]"
echo "installed kubeingest with extras [${EXTRAS}] into .venv"
