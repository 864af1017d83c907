#!/usr/bin/env bash
# The test command (README, CI). Bootstraps what it needs, then lint, types, scans and tests.
#
#   scripts/test.sh                      everything, as CI runs it
#   scripts/test.sh -m unit              one layer: unit | policy | integration | e2e
#   scripts/test.sh -m "not e2e" -x      any pytest arguments
#
# With a marker expression that names neither integration nor e2e, only the Python
# virtualenvs are bootstrapped (no root, Docker or redis-server needed).
set -euo pipefail
LOG_TAG=test
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

needs_system=1
if [ "$#" -gt 0 ] && [[ "$*" == *"-m"* ]] && [[ "$*" != *integration* ]] && [[ "$*" != *e2e* ]]; then
    needs_system=0
fi
# A negated layer ("not e2e") still runs integration tests, which need redis-server.
[[ "$*" == *"not e2e"* ]] && needs_system=1

total="$(now_ms)"
step() { # step NAME COMMAND...: run one stage with a timing line
    local name="$1" start
    shift
    start="$(now_ms)"
    log "== $name"
    "$@"
    log "-- $name ok ($(elapsed "$start"))"
}

if [ "$needs_system" = 1 ]; then
    step bootstrap scripts/bootstrap.sh
    step base-image scripts/bootstrap-base-image.sh
else
    step bootstrap scripts/bootstrap.sh --python
fi
step ruff "$VENV/bin/ruff" check .
step ruff-format "$VENV/bin/ruff" format --check --quiet .
step mypy "$VENV/bin/mypy" infra policies app tests scripts
if [ -f .checkov.yaml ]; then
    step checkov "$ROOT/.venv-checkov/bin/checkov" --config-file .checkov.yaml --quiet --compact
fi

# run_pytest ARGS...: pytest for a selection given on the command line, where exit 5 (nothing
# selected) is reported, not fatal.
run_pytest() {
    local rc=0
    "$VENV/bin/pytest" "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        log "no tests selected by: $*"
        return 0
    fi
    return "$rc"
}

if [ "$#" -gt 0 ]; then
    step pytest run_pytest "$@"
else
    # Everything but e2e in parallel on both cores; e2e deploys shared stacks, so it runs alone.
    # Here every layer must have tests: an empty one fails (pytest exit 5), not passes.
    step "pytest (unit, policy, integration)" "$VENV/bin/pytest" -m "not e2e" -n 2
    step "pytest (e2e)" "$VENV/bin/pytest" -m e2e
fi
log "all checks passed in $(elapsed "$total")"
