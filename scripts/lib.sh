# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
# Output is plain `component: message` lines so logs stay greppable.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# SECURE_REDIS_VENV: another virtualenv for the same checkout (e.g. one per interpreter:
# scripts/check-debian-python.sh).
VENV="${SECURE_REDIS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

# build_locked COMMAND...: run COMMAND holding the image-build lock shared; `down` takes it
# exclusively, never waiting, to remove the untagged parents its images leave, which a build
# running beside it may go on from. The applier's own module opens the file
# (infra/applier/build_lock.py, SECURE_REDIS_BUILD_LOCK): it is in /tmp, and flock(1) followed
# a symbolic link another account put there, waited for ever on a FIFO, and took a file any
# account could open, and so hold, for ever.
build_locked() { PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m infra.applier.build_lock "$@"; }

log() { printf '%s: %s\n' "${LOG_TAG:-secure-redis}" "$*"; }
warn() { printf '%s: warning: %s\n' "${LOG_TAG:-secure-redis}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${LOG_TAG:-secure-redis}" "$*" >&2; exit 1; }

# on_interrupt WAY_ON: Ctrl-C or SIGTERM ends the script with one line, `TAG: error:
# interrupted; WAY_ON`, and exit 130 (143 for SIGTERM; its EXIT trap still runs). Bash runs the
# trap once the command in the foreground has ended, before a `|| die` of the script reads that
# command's status: an interrupted `infra.apply up` (exit 3) read as "the local applier failed"
# in rotate.sh and "could not deploy" in setup. One line, not one per level: a script run by
# another in the same process group, which the same Ctrl-C reaches, leaves it to the outermost
# (SECURE_REDIS_INTERRUPT_SAYER, its pid and group); one in a group of its own (a test's
# setsid) or under a stale variable says it itself. The Python commands end silently by the
# signal (infra/cli.py, exit_with); infra.apply says what it saved first.
on_interrupt() {
    local stat="" group=""
    _way_on="$1"
    # The process group from /proc, with builtins only: a script run with a bare PATH (a test
    # of that) has no ps. Fields after the command's name: state, parent, group.
    read -r stat </proc/$$/stat || true
    read -r _ _ group _ <<<"${stat##*) }"
    _outer_says=0
    case "${SECURE_REDIS_INTERRUPT_SAYER:-}" in
        "$$:$group") ;; # this script again (rotate.sh execs itself under its lock)
        *":$group") _outer_says=1 ;;
        *) export SECURE_REDIS_INTERRUPT_SAYER="$$:$group" ;;
    esac
    trap '_interrupted 130' INT
    trap '_interrupted 143' TERM
}
_interrupted() {
    trap - INT TERM
    [ "$_outer_says" = 1 ] \
        || printf '%s: error: interrupted; %s\n' "${LOG_TAG:-secure-redis}" "$_way_on" >&2
    exit "$1"
}

# now_ms / elapsed START_MS: wall-clock timing for progress lines.
now_ms() { date +%s%3N; }
elapsed() { local ms=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }

# print_usage: a script's usage, for -h/--help: its leading comment block (every `#` line after
# the shebang, up to the first line of code), without the comment marks.
print_usage() { awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "$0"; }

is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

# start_detached LOG COMMAND...: run COMMAND in the background in its own session (it outlives
# the caller), output to LOG, stdin from /dev/null, and none of the caller's other descriptors:
# under `flock LOCK ...` a child would otherwise keep the lock for as long as it runs (a
# dockerd started so held the shared Docker lock until it stopped). $! is its pid.
start_detached() {
    local log="$1"
    shift
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
        done
        exec setsid nohup "$@" >"$log" 2>&1 </dev/null
    ) &
}

# start_group COMMAND...: run COMMAND (a command or a function) in the background in a process
# group of its own, stdin from /dev/null; $! is its pid and the group's id. stop_group ends the
# whole group: a signal to $! alone leaves what COMMAND started running (a pytest's rotate.sh,
# its `infra.apply up`, docker), and a Ctrl-C no longer reaches the group, only the caller.
start_group() {
    set -m
    "$@" </dev/null &
    set +m
}

# stop_group PID: end the process group start_group started as PID and everything in it, and
# return once none of it runs: SIGINT first (pytest tears its fixtures down, infra.apply saves
# its state), SIGTERM after STOP_GROUP_GRACE_S (default 30) for what ignores it, SIGKILL after
# as long again. A group already gone is no error.
stop_group() {
    local pid="$1" sig grace="${STOP_GROUP_GRACE_S:-30}"
    # Checked here too, not only by the scripts' require_grace_seconds: bash arithmetic on the
    # value would run a command substitution in an array subscript (`a[$(cmd)]`).
    if ! whole_number "$grace"; then
        warn "STOP_GROUP_GRACE_S=$(shown "$grace") is not a whole number of seconds; 30 used"
        grace=30
    fi
    for sig in INT TERM KILL; do
        kill "-$sig" -- "-$pid" 2>/dev/null || break
        _group_ends_within "$pid" "$grace" && break
    done
    wait "$pid" 2>/dev/null || true
}

# require_grace_seconds: die unless STOP_GROUP_GRACE_S is unset or a whole number of seconds,
# before anything starts: stop_group runs in exit handlers, too late for a usage error.
require_grace_seconds() {
    [ -z "${STOP_GROUP_GRACE_S:-}" ] || whole_number "$STOP_GROUP_GRACE_S" \
        || die "STOP_GROUP_GRACE_S=$(shown "$STOP_GROUP_GRACE_S") is not a whole number of seconds; set it to one (default 30), e.g. STOP_GROUP_GRACE_S=10"
}

# _group_ends_within PGID SECONDS: whether no process of group PGID runs (zombies aside: the
# leader stays one until its parent waits for it) within SECONDS.
_group_ends_within() {
    local tenths=$(($2 * 10))
    while ps -e -o pgid= -o stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; do
        [ "$tenths" -gt 0 ] || return 1
        tenths=$((tenths - 1))
        sleep 0.1
    done
}

# docker_ready: the engine answers (not just the client binary being present).
docker_ready() { have docker && docker info >/dev/null 2>&1; }
# docker_unready: why docker_ready failed and what to do, for the caller's error line. With no
# docker command on PATH the line said "the Docker engine is not reachable ...; start it", and
# the engine may well be running: the fix is PATH.
docker_unready() {
    if have docker; then
        printf '%s' "the Docker engine is not reachable (docker info failed); start it with scripts/bootstrap.sh"
    else
        printf '%s' "the docker command is not on PATH ($(shown "$PATH" 0)); add the directory that holds it (command -v docker in another shell), or install docker.io with scripts/bootstrap.sh as root"
    fi
}

# step NAME COMMAND...: run one stage between a start line and a timing line; a failing
# command stops the calling script (set -e) with its own message.
step() {
    local name="$1" start
    shift
    start="$(now_ms)"
    log "== $name"
    "$@"
    log "-- $name done ($(elapsed "$start"))"
}

# The stack-name rule, the same pattern as STACK_NAME_PATTERN in infra/settings.py (the unit
# test tests/unit/test_infra_stack_files.py pins the two together): the name is part of every
# Docker object name.
STACK_NAME_PATTERN='^[a-z0-9][a-z0-9-]{0,30}$'
valid_stack_name() { [[ "$1" =~ $STACK_NAME_PATTERN ]]; }

# shown ARG [MAX]: a user's argument as an error message may print it: in quotes, or
# shell-escaped ($'a\nb') when it holds a newline or a control character, which would split the
# one-line message or reach the terminal as an escape sequence; cut to its first MAX characters
# (default 60, as infra/settings.py's quoted() cuts) followed by its length: a 5000-character
# stack name was echoed whole. MAX 0: never cut (PATH, where the directory that matters may be
# the last).
shown() {
    local text="$1" max="${2:-60}" more=""
    if [ "$max" != 0 ] && [ "${#text}" -gt "$max" ]; then
        more="... (${#text} characters)"
        text="${text:0:max}"
    fi
    case "$text" in
        *[![:print:]]*) printf '%q%s' "$text" "$more" ;;
        *) printf "'%s'%s" "$text" "$more" ;;
    esac
}

# whole_number VALUE: whether VALUE is a plain decimal of at most 9 digits (no sign, no leading
# zero, ASCII digits only). Check a value from the environment, an argument or a file with it
# before bash arithmetic sees it (`$(( ))`, `[[ -gt ]]`, `let`, `declare -i`): arithmetic
# evaluates the text as an expression, so `a[$(cmd)]` runs cmd, `010` is 8 and `08` an error.
whole_number() { [[ "$1" =~ ^(0|[123456789][0123456789]{0,8})$ ]]; }
# known_stacks: the names of this checkout's stack files, space-separated.
known_stacks() {
    find "$ROOT" -maxdepth 1 -name 'Pulumi.*.yaml' -printf '%f\n' \
        | sed 's/^Pulumi\.\(.*\)\.yaml$/\1/' | sort | paste -sd ' '
}
# require_stack NAME: die unless NAME is a valid stack name with a Pulumi.NAME.yaml.
require_stack() {
    local stack="$1" known
    known="$(known_stacks)"
    valid_stack_name "$stack" \
        || die "$(shown "$stack") is not a stack name: 1-31 lowercase letters, digits or '-', starting with a letter or digit (stacks: $known)"
    [ -f "$ROOT/Pulumi.$stack.yaml" ] \
        || die "no stack '$stack': Pulumi.$stack.yaml does not exist (stacks: $known)"
}

# fault_tests_hint STACK: the setup summary's pointer to the tests it did not run. Those of
# scripts/test.sh -m e2e that need both dev and prod take them as they find them: deployed
# when not running, else used as they are, their Redis and app stopped and restarted by the
# fault tests. For a stack of one's own (README's Quick start: a host shared with others'
# stacks) that is said, rather than "deploys dev and prod".
fault_tests_hint() {
    local hint="fault tests (stop/restart Redis, live key rotation): scripts/setup-secure-redis.sh $1 --full"
    case "$1" in
        dev | prod) echo "$hint; with dev+prod isolation: scripts/test.sh -m e2e (deploys dev and prod)" ;;
        *) echo "$hint; dev+prod isolation: scripts/test.sh -m e2e, which runs its fault tests on dev and prod, deploying them or using them as they run: not on a host where others use them" ;;
    esac
}

# drift_hint STACK: status.sh's pointer to what it does not read. It reads the running
# containers only; what the next up would change (a setting changed in Pulumi.STACK.yaml, a
# change made on the engine by hand: drift) needs the local applier's state, which
# `python -m infra.apply status` reads (docs/day2.md, "Changes made behind the applier's
# back"). Not run from here: it renders the program and inspects every container (4.4 s on s45
# beside status.sh's 5.9 s), and a state sealed with SECURE_REDIS_STATE_PASSPHRASE fails to open
# without it, a failure that is not the running stack's. Said only where this checkout's
# applier deployed STACK (its state is here): under `pulumi up` there is no such state.
drift_hint() {
    [ -f "$ROOT/.secure-redis/state/$1.state" ] || return 0
    log "not read here: what the next up would change (drift, a setting changed since the last up): python -m infra.apply status --stack $1"
}

# missing_option_value ARGS...: the pytest option (-m, -k, --stack, ...) that ends the arguments
# or is followed by another option instead of its value, for a one-line usage error before any
# bootstrap (pytest itself says "expected one argument" only once the virtualenv exists);
# nothing when every value-taking option has its value.
missing_option_value() {
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -m | -k | -n | -p | -c | -o | -W | --stack | --maxfail | --durations | --dist | --deselect | --ignore)
                if [ "$#" -lt 2 ] || [[ "$2" == -* ]]; then
                    printf '%s' "$1"
                    return 0
                fi
                shift 2
                continue
                ;;
        esac
        shift
    done
    return 1
}

# python_only ARGS...: true when the pytest arguments select only layers that need no system
# packages. One loop over the arguments; an option's value is never mistaken for an option
# (`--maxfail=1` is not `-m`), and anything not understood means "bootstrap everything".
python_only() {
    local marker="" paths=0 other_paths=0
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -m) [ "$#" -ge 2 ] || return 1; marker="$2"; shift 2; continue ;;
            -m*) marker="${1#-m}" ;;
            tests/unit | tests/unit/* | tests/policy | tests/policy/*) paths=$((paths + 1)) ;;
            -*) ;;
            tests | tests/* | */* | *.py) other_paths=$((other_paths + 1)) ;;
            *) ;; # an option's value (-n 2, -p no:cacheprovider, -k name)
        esac
        shift
    done
    [ "$other_paths" -eq 0 ] || return 1
    if [ -n "$marker" ]; then
        case "$marker" in
            *integration* | *e2e* | *not*) return 1 ;;
        esac
        return 0
    fi
    [ "$paths" -gt 0 ]
}

require_venv() {
    [ -x "$PY" ] || die "no virtualenv at $VENV; run scripts/bootstrap.sh first"
}
