#!/usr/bin/env bash
# Refresh constraints.txt from a fresh resolve of pyproject's [st,test,bench] extras, so CI and the
# cpu image install the same versions (they cannot drift).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
"$tmp/venv/bin/pip" install --quiet -e ".[st,test,bench]"
{
  echo "# Exact versions CI tests and the cpu image installs (pip install -c constraints.txt ...)."
  echo "# Regenerate after changing dependencies: scripts/lock.sh"
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v '^kubeingest'
} > constraints.txt
rm -rf "$tmp"
echo "wrote constraints.txt"
