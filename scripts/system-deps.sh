#!/usr/bin/env bash
# Install the Debian packages the tests need, only those missing (idempotent).
# Arguments: redis | prometheus | pydocs, any of them.
set -euo pipefail
need=()
for dep in "$@"; do
  case "$dep" in
    redis)      command -v redis-server >/dev/null || need+=(redis-server) ;;
    prometheus) command -v prometheus >/dev/null || need+=(prometheus) ;;
    pydocs)     [ -d /usr/share/doc/python3.11/html/_sources ] || need+=(python3.11-doc) ;;
    *) echo "system-deps.sh: unknown dependency $dep" >&2; exit 2 ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (apt-get install them, or run as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
