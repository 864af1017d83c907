#!/usr/bin/env bash
# The test command (README, "The two commands"; .ci/run runs it). Bootstraps what it needs,
# then lint, types, scans and tests.
#
#   scripts/test.sh                      everything, as CI runs it
#   scripts/test.sh -m unit              one layer: unit | policy | integration | e2e
#   scripts/test.sh -m "not e2e" -x      any pytest arguments
#   scripts/test.sh --help               this text (pytest's own: .venv/bin/pytest --help)
#
# Only the Python virtualenvs are bootstrapped (no root, Docker or redis-server needed) when
# the arguments select unit or policy tests alone: a marker expression (-m EXPR) naming neither
# integration nor e2e nor using `not`, or test paths under tests/unit or tests/policy only.
set -euo pipefail
LOG_TAG="test"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
case "${1:-}" in -h | --help) print_usage; exit 0 ;; esac
require_grace_seconds
# A value-taking option without its value: one line now, not after the whole bootstrap.
if option="$(missing_option_value "$@")"; then
    case "$option" in
        -m) wanted="a marker expression (-m unit, -m \"e2e and not fault\")" ;;
        -k) wanted="a name expression (-k pki)" ;;
        --stack) wanted="a stack name (--stack dev)" ;;
        *) wanted="a value" ;;
    esac
    die "$option needs $wanted; usage: scripts/test.sh [-m EXPR] [pytest arguments...] (scripts/test.sh --help)"
fi

needs_system=1
if [ "$#" -gt 0 ] && python_only "$@"; then
    needs_system=0
fi

total="$(now_ms)"
if [ "$needs_system" = 1 ]; then
    step bootstrap scripts/bootstrap.sh
    step base-image scripts/bootstrap-base-image.sh
    # Filled once before the tests: a fill in the middle of the parallel run (the first image
    # test) changed the app's build context, and so its image tag, between two renders.
    step app-wheelhouse scripts/build-app-image.sh --wheelhouse-only
else
    step bootstrap scripts/bootstrap.sh --python
fi
# build_shared_layers: the layers every image build of the full run shares (app/Dockerfile's
# first stage and its runtime's packages, infra/redis-image's packages), built once, untagged,
# as build cache. Without it the stacks' deploys (an image per role and stack) and the tests'
# images built them all at the same time from nothing, beside the tests: six app builds and two
# Redis builds at once in a fresh-clone run, each downloading and installing the same packages
# (the first image test's setup waited 451 s for its build, at load 10-24).
build_shared_layers() {
    local app_pid rc=0
    scripts/build-app-image.sh --cache-only &
    app_pid=$!
    build_locked docker build --quiet infra/redis-image >/dev/null || rc=$?
    wait "$app_pid" || rc=$?
    return "$rc"
}
shared_layers_pid=""
if [ "$#" -eq 0 ]; then
    # In the background while the checks below run (they use no image); waited for before the
    # tests and the deploy begin. Stopped if a check fails first.
    shared_layers_log="$(mktemp)"
    start_group build_shared_layers >"$shared_layers_log" 2>&1
    shared_layers_pid=$!
    trap 'stop_group "$shared_layers_pid"; rm -f "$shared_layers_log"' EXIT
fi
step ruff "$VENV/bin/ruff" check .
step ruff-format "$VENV/bin/ruff" format --check --quiet .
step mypy "$VENV/bin/mypy" infra policies app tests scripts
if have shellcheck; then
    step shellcheck shellcheck scripts/*.sh .ci/run
elif [ "$needs_system" = 1 ]; then
    die "shellcheck is missing although the bootstrap installs it; run: apt-get install shellcheck"
else
    warn "shellcheck is not installed (scripts/bootstrap.sh installs it as root); scripts not linted"
fi
if [ -x "$ROOT/.venv-checkov/bin/checkov" ]; then
    step checkov "$ROOT/.venv-checkov/bin/checkov" --config-file .checkov.yaml --quiet --compact
elif [ "$needs_system" = 1 ]; then
    die "no .venv-checkov (see the bootstrap's warning): checkov needs Python 3.11.5 or newer"
else
    warn "no .venv-checkov (its lock needs Python 3.11.5+); checkov not run"
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
    # e2e as scripts/setup-secure-redis.sh verifies: dev and prod deployed side by side, the
    # checks of the undisturbed stacks on two workers (they only read the stacks; a file's tests
    # stay on one worker), then the fault tests in order (dev's and prod's side by side, then
    # those across both); the tests that use no deployed stack (`stackless`: throwaway stacks,
    # images) run beside all the fault tests. The stacks this run deployed are removed at the
    # end, even after a failure or an interrupt, and nothing of them may remain.
    # shared_layers_built: wait for build_shared_layers; its messages, and its exit status.
    shared_layers_built() {
        local rc=0
        wait "$shared_layers_pid" || rc=$?
        cat "$shared_layers_log"
        rm -f "$shared_layers_log"
        return "$rc"
    }
    step "images: the layers every build shares (started with the checks above)" \
        shared_layers_built
    trap - EXIT
    # The deploy mostly waits (image builds, health checks every 5 s, run-to-completion jobs),
    # so it runs in the background while the other layers are tested: no test of theirs uses
    # the stacks' objects (theirs have names and labels of their own).
    # The stacks are claimed in this shell's name (tests/e2e/claims.py): another checkout's
    # e2e run on this Docker engine waits for this one, and removes what it deployed if it is
    # killed before its end removes them itself.
    export SECURE_REDIS_E2E_HOLDER=$$
    e2e_owned="$(mktemp)"
    e2e_deploy_log="$(mktemp)"
    # The rotation tests raise generations in Pulumi.<stack>.yaml and keep them while the stack
    # runs (tests/e2e/conftest.py, stack_files_restored); the files come back after the removal.
    e2e_files="$(mktemp -d)"
    cp Pulumi.*.yaml "$e2e_files/"
    e2e_up() {
        local start rc=0
        start="$(now_ms)"
        "$PY" -m tests.e2e.stacks up dev prod >"$e2e_owned" || rc=$?
        log "the deploy of dev and prod took $(elapsed "$start") (exit $rc)"
        return "$rc"
    }
    e2e_up >"$e2e_deploy_log" 2>&1 &
    e2e_deploy_pid=$!
    # e2e_deployed: wait for the background deploy; its messages, and its exit status.
    e2e_deployed() {
        local rc=0
        wait "$e2e_deploy_pid" || rc=$?
        cat "$e2e_deploy_log"
        return "$rc"
    }
    # The e2e tests run in process groups of their own (start_group, e2e_run), listed here
    # while they run: interrupted (Ctrl-C, SIGTERM), the exit handler stops each group with
    # everything its tests started (rotate.sh, `infra.apply up`, docker) before the stacks go.
    e2e_groups=()
    e2e_prod_log=""      # prod's fault-test output while dev's runs
    e2e_stackless_pid="" # the stackless tests' group, beside the fault tests
    e2e_stackless_log="" # their output
    e2e_down() {
        local owned name pid rc=0
        for pid in "${e2e_groups[@]}" $e2e_stackless_pid; do
            stop_group "$pid"
        done
        if [ -n "$e2e_stackless_pid" ]; then
            log "the tests that use no deployed stack, stopped:"
            cat "$e2e_stackless_log"
        fi
        wait "$e2e_deploy_pid" 2>/dev/null || true # after a failure above, the deploy may still run
        mapfile -t owned <"$e2e_owned"
        rm -f "$e2e_owned" "$e2e_deploy_log" "$e2e_prod_log" "$e2e_stackless_log"
        step "e2e: remove what this run deployed (${owned[*]:-nothing})" \
            "$PY" -m tests.e2e.stacks down "${owned[@]}" || rc=$?
        for name in "${owned[@]}"; do
            cp "$e2e_files/Pulumi.$name.yaml" "Pulumi.$name.yaml"
        done
        rm -rf "$e2e_files"
        return "$rc"
    }
    trap e2e_down EXIT
    # Each step names its ten slowest tests: where the next minute of CI is to be found.
    slowest=(--durations=10)
    # e2e_run COMMAND...: COMMAND in a process group of its own, waited for; its exit status.
    e2e_run() {
        local rc=0
        start_group "$@"
        e2e_groups=("$!")
        wait "$!" || rc=$?
        e2e_groups=()
        return "$rc"
    }
    # e2e_faults_per_stack: dev's and prod's fault tests side by side, each in a process group
    # of its own (prod's output follows dev's); fails if either does. The tests that run on one
    # stack only (`one_stack`) run on dev, but those of the files in on_prod (rotate.sh's
    # Pulumi CLI path, 65 s; the retired data key's AOF, 55 s; the API token's rotation, 68 s)
    # on prod, after prod's own, so that the two sides take about as long (with all three on
    # dev, on 2026-12-04: dev 358 s, prod under 160 s, and the whole run 949 s).
    e2e_prod_faults() {
        "$VENV/bin/pytest" "${slowest[@]}" tests/e2e --stack prod \
            -m "e2e and fault and not cross_stack and not one_stack" &&
            "$VENV/bin/pytest" "${slowest[@]}" "$@" --stack prod -m "e2e and fault"
    }
    e2e_faults_per_stack() {
        local prod_pid dev_pid rc=0 prod_rc=0 file
        local on_prod=(
            tests/e2e/test_e2e_rotate_pulumi_cli.py
            tests/e2e/test_e2e_retired_data_key.py
            tests/e2e/test_e2e_rotation_api_token.py
        )
        local off_dev=()
        for file in "${on_prod[@]}"; do off_dev+=(--deselect "$file"); done
        e2e_prod_log="$(mktemp)"
        start_group e2e_prod_faults "${on_prod[@]}" >"$e2e_prod_log" 2>&1
        prod_pid=$!
        start_group "$VENV/bin/pytest" "${slowest[@]}" tests/e2e --stack dev \
            -m "e2e and fault and not cross_stack" "${off_dev[@]}"
        dev_pid=$!
        e2e_groups=("$prod_pid" "$dev_pid")
        wait "$dev_pid" || rc=$?
        wait "$prod_pid" || prod_rc=$?
        e2e_groups=()
        log "prod's fault tests (exit $prod_rc):"
        cat "$e2e_prod_log"
        rm -f "$e2e_prod_log"
        [ "$rc" -eq 0 ] && [ "$prod_rc" -eq 0 ]
    }
    # The tests that use no deployed stack (`stackless`: the applier's throwaway stacks, an
    # image build, the scripts' refusals) touch neither dev nor prod, so they run in the
    # background beside all the fault tests: those mostly wait (ups, health checks, restarts;
    # measured on one stack, 234 s of dev's fault tests took 58 s of CPU), and so do these.
    e2e_stackless_start() {
        e2e_stackless_log="$(mktemp)"
        start_group "$VENV/bin/pytest" "${slowest[@]}" tests/e2e \
            -m "e2e and stackless and not fault" >"$e2e_stackless_log" 2>&1
        e2e_stackless_pid=$!
    }
    # e2e_stackless_done: wait for them; their output, and their exit status.
    e2e_stackless_done() {
        local rc=0
        wait "$e2e_stackless_pid" || rc=$?
        e2e_stackless_pid=""
        cat "$e2e_stackless_log"
        rm -f "$e2e_stackless_log"
        return "$rc"
    }
    # Everything but e2e in parallel on both cores; e2e deploys shared stacks, so it runs alone.
    # Here every layer must have tests: an empty one fails (pytest exit 5), not passes. Each
    # session collects only the tests it may select (collecting all takes a worker 5-9 s).
    step "pytest (unit, policy, integration)" \
        "$VENV/bin/pytest" "${slowest[@]}" -m "not e2e" --ignore tests/e2e -n 2
    step "e2e: deploy dev and prod side by side (started with the step above)" e2e_deployed
    step "pytest (e2e, undisturbed stacks, two workers)" \
        e2e_run "$VENV/bin/pytest" "${slowest[@]}" tests/e2e \
        -m "e2e and not fault and not stackless" -n 2 --dist loadfile
    # The fault tests disturb one stack each, so dev's and prod's run side by side (they mostly
    # wait for restarts, health checks and ups; each stack has its own state lock, images and
    # stack file). Those that use both stacks (`cross_stack`) run after them, alone but for the
    # stackless tests.
    e2e_stackless_start
    step "pytest (e2e, fault tests of dev and prod, side by side)" e2e_faults_per_stack
    step "pytest (e2e, fault tests across the two stacks)" \
        e2e_run "$VENV/bin/pytest" "${slowest[@]}" tests/e2e -m "e2e and fault and cross_stack"
    step "pytest (e2e, the tests that use no deployed stack, started with the fault tests)" \
        e2e_stackless_done
    trap - EXIT
    e2e_down
fi
log "all checks passed in $(elapsed "$total")"
