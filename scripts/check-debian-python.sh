#!/usr/bin/env bash
# The fresh-machine check on Debian 12's own interpreter (/usr/bin/python3, CPython 3.11.2):
# bootstrap a separate virtualenv with it, then run the fast layers (unit and policy) there.
#
#   scripts/check-debian-python.sh [PYTHON]     default /usr/bin/python3
#
# CI runs the same in a debian:bookworm container (.github/workflows/ci.yml, job
# debian-python). The checkout's own .venv is not touched: this uses .venv-debian.
set -euo pipefail
LOG_TAG=debian-python
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
case "${1:-}" in -h | --help) print_usage; exit 0 ;; esac
[ "$#" -le 1 ] || die "usage: scripts/check-debian-python.sh [PYTHON]"

python="${1:-/usr/bin/python3}"
[ -x "$python" ] || die "$python not found; on Debian 12: apt-get install python3 python3-venv"
log "interpreter: $("$python" -VV | head -n 1)"
# checkov (its own closure, scanned by the main CI job) is not what this check is about: the
# bootstrap leaves .venv-checkov as it is, and test.sh runs it only if it is there.
export PYTHON="$python" SECURE_REDIS_VENV="$ROOT/.venv-debian" CHECKOV_PYTHON=none
step "bootstrap with $python" scripts/bootstrap.sh --python
step "unit and policy layers" scripts/test.sh -m "unit or policy" -n 2 -q -p no:cacheprovider
