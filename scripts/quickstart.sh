#!/usr/bin/env bash
# Fresh machine -> the quickstart job ingested into Qdrant local mode, in one command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/kubeingest run examples/quickstart.yaml "$@"
