#!/usr/bin/env bash
# One idempotent bootstrap. A fresh machine gets everything the project needs; a warm one is
# checked and skipped in about a second.
#
#   scripts/bootstrap.sh            python virtualenvs, system packages, Docker engine
#   scripts/bootstrap.sh --python   only the virtualenvs (no root needed; unit tests need no more)
#
# Installs, when missing:
#   .venv          pinned packages from requirements.lock, with the repository on sys.path
#   .venv-checkov  checkov from requirements-checkov.lock (its pins clash with pulumi's)
#   redis-server, redis-tools, docker.io, mmdebstrap, shellcheck, prometheus (promtool)
#                  via apt-get, as root
# and starts the engine when `docker info` fails: with `systemctl start docker` where systemd
# has the service (configured as its owner set it), else dockerd in the background with
# live-restore (not on a swarm member: incompatible) unless /etc/docker/daemon.json, or
# DOCKERD_CONFIG, sets it (its log: DOCKERD_LOG, default /var/log/secure-redis-dockerd.log). Either way, and for an engine already running, it
# reports the engine's live-restore.
#
# PYTHON=/path/to/python3          the project's interpreter (3.11 to 3.13, pyproject.toml's
#                                  requires-python; default python3)
# CHECKOV_PYTHON=/path/to/python3  .venv-checkov's (3.11.5 or newer; `none` skips it)
set -euo pipefail
LOG_TAG=bootstrap
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

want_system=1
case "${1:-}" in
    "") ;;
    --python) want_system=0 ;;
    -h | --help) print_usage; exit 0 ;;
    *) die "unknown option '$1'; usage: scripts/bootstrap.sh [--python]" ;;
esac

PYTHON="${PYTHON:-python3}"
# The interpreters the project supports are pyproject.toml's requires-python (">=3.11,<3.14"),
# read here so that what the bootstrap accepts, the docs and CI (3.11 and 3.13) cannot drift:
# a newer interpreter was accepted although nothing was ever tested on it.
read -r py_min py_below < <(sed -n \
    's/^requires-python = ">=\([0-9]*\.[0-9]*\),<\([0-9]*\.[0-9]*\)"$/\1 \2/p' \
    "$ROOT/pyproject.toml") || true
[ -n "${py_below:-}" ] || die "pyproject.toml: requires-python is not of the form \">=3.X,<3.Y\""
SUPPORTED_PYTHONS="$py_min to ${py_below%.*}.$((${py_below#*.} - 1))"
if have "$PYTHON"; then
    "$PYTHON" -c "import sys; sys.exit(not (${py_min/./, },) <= sys.version_info[:2] < (${py_below/./, },))" \
        || die "$PYTHON is $("$PYTHON" -V 2>&1): secure-redis supports Python $SUPPORTED_PYTHONS (pyproject.toml requires-python); set PYTHON=/path/to/python3.X with one of those"
fi
# checkov's own closure (requirements-checkov.lock) needs Python 3.11.5 or newer (its
# soupsieve pin says so), so it may use another interpreter than the project's; on a machine
# with only an older one (Debian 12's 3.11.2) .venv-checkov is skipped with a warning;
# CHECKOV_PYTHON=none skips it on purpose (scripts/check-debian-python.sh).
CHECKOV_PYTHON="${CHECKOV_PYTHON:-python3}"

# make_venv DIR LOCKFILE INTERPRETER [PIP_OPTION...]: (re)create DIR when the lock or the
# interpreter changed; the options go to its `pip install`.
make_venv() {
    local dir="$1" lock="$2" python="$3" stamp want have_stamp start
    shift 3
    want="$({ cat "$lock"; "$python" -VV 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
    stamp="$dir/.lock.sha256"
    have_stamp="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$have_stamp" = "$want" ] && [ -x "$dir/bin/python" ]; then
        log "$(basename "$dir") up to date"
        return
    fi
    have "$python" || die "$python not found; install Python $SUPPORTED_PYTHONS (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3"
    start="$(now_ms)"
    log "creating $(basename "$dir") from $(basename "$lock") with $("$python" -V 2>&1) (first run takes about a minute)"
    rm -rf "$dir"
    "$python" -m venv "$dir" || die "could not create $dir; Debian needs: apt-get install python3-venv"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
        --no-deps "$@" -r "$lock" 2> >(grep -v "^WARNING: Location" >&2) \
        || die "pip could not install $lock; check that PyPI is reachable"
    "$dir/bin/python" -m pip check --disable-pip-version-check >/dev/null \
        || die "$(basename "$lock") is inconsistent; regenerate it with scripts/lock.sh"
    echo "$want" >"$stamp"
    log "$(basename "$dir") ready in $(elapsed "$start")"
}

# The two virtualenvs are independent, so they are made side by side: a fresh clone waits
# for the longer one (about 75 s) instead of both (about 135 s, fresh-clone CI, 2026-11-30).
checkov_pid=""
if [ "$CHECKOV_PYTHON" = none ]; then
    log ".venv-checkov not requested (CHECKOV_PYTHON=none)"
elif have "$CHECKOV_PYTHON" && "$CHECKOV_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11, 5))'; then
    # --no-compile: pip byte-compiled all 6400 modules of checkov's closure (boto3, botocore,
    # its frameworks), of which one scan imports about 700 (compiled then, once, into the
    # venv): 68 -> 50 s of CPU for the install, 3 s more for the first scan (2026-12-02).
    make_venv "$ROOT/.venv-checkov" "$ROOT/requirements-checkov.lock" "$CHECKOV_PYTHON" \
        --no-compile &
    checkov_pid=$!
elif [ -x "$ROOT/.venv-checkov/bin/checkov" ]; then
    log ".venv-checkov kept as it is ($CHECKOV_PYTHON is older than 3.11.5)"
else
    warn "no .venv-checkov: checkov's lock needs Python 3.11.5 or newer and $CHECKOV_PYTHON is $("$CHECKOV_PYTHON" -V 2>&1 || echo missing); set CHECKOV_PYTHON=/path/to/python3.12 to scan with checkov"
fi
make_venv "$VENV" "$ROOT/requirements.lock" "$PYTHON"
# The repository and app/ on sys.path: `python -m infra.preview`, `-m policies.check` and
# `-m secure_cache` work from any directory with this interpreter, with no build step.
site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n%s\n' "$ROOT" "$ROOT/app" >"$site/secure-redis.pth"
# The engine starts the dynamic-provider host in the program's directory (main: infra/), where
# Pulumi.yaml's relative `virtualenv: .venv` means infra/.venv (pulumi/pulumi#7061): link it.
if [ -d "$ROOT/infra/.venv" ] && [ ! -L "$ROOT/infra/.venv" ]; then
    die "infra/.venv is a directory; remove it (rm -r infra/.venv) so it can link to ../.venv"
fi
ln -sfn ../.venv "$ROOT/infra/.venv"
if [ -n "$checkov_pid" ]; then
    wait "$checkov_pid" || die ".venv-checkov could not be made; see the message above"
fi

[ "$want_system" = 1 ] || exit 0

# command -> Debian package that provides it
declare -A PACKAGE_FOR=(
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    [redis-benchmark]=redis-tools
    [dockerd]=docker.io
    [docker]=docker.io
    [mmdebstrap]=mmdebstrap
    [promtool]=prometheus
    [shellcheck]=shellcheck
)
missing=()
for cmd in "${!PACKAGE_FOR[@]}"; do
    have "$cmd" || missing+=("${PACKAGE_FOR[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if ! is_root; then
        die "missing packages: ${missing[*]}. Not running as root, so they cannot be installed here; run: sudo apt-get install -y ${missing[*]} (or re-run this script as root)"
    fi
    if ! have apt-get; then
        die "missing packages: ${missing[*]} and no apt-get on this machine; install the equivalents of the Debian packages ${missing[*]} with your package manager"
    fi
    start="$(now_ms)"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; check the machine's Debian mirror"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed; see the output above"
    log "installed ${missing[*]} in $(elapsed "$start")"
else
    log "system packages present ($(printf '%s\n' "${PACKAGE_FOR[@]}" | sort -u | paste -sd ' '))"
fi

# Debian's redis-server package starts a plaintext server on 6379; this project never uses it.
if have systemctl && systemctl is-active --quiet redis-server 2>/dev/null; then
    log "note: the distribution's redis-server service is running; secure-redis does not use it"
fi

# engine_live_restore: whether the engine keeps containers running while it restarts
# (infra/engine_report.py says what to do when it does not); a report, never a failure.
engine_live_restore() {
    local line
    line="$("$PY" -m infra.engine_report --live-restore 2>/dev/null)" || return 0
    line="${line#engine: }"
    case "$line" in
        "WARNING "*) warn "${line#WARNING }" ;;
        *) log "$line" ;;
    esac
}

# daemon_config KEY: KEY's value in dockerd's configuration file, as JSON (true, false,
# "text"); empty when the file does not set it or does not exist.
daemon_config() {
    "$PY" -c 'import json, sys
try:
    with open(sys.argv[1]) as f:
        config = json.load(f)
except (OSError, ValueError):
    config = {}
value = config.get(sys.argv[2]) if isinstance(config, dict) else None
print("" if value is None else json.dumps(value))' "$DOCKERD_CONFIG" "$1"
}
# data_root: where the engine keeps its state (dockerd's default unless the file moves it).
data_root() {
    local root
    root="$(daemon_config data-root)"
    root="${root#\"}"
    root="${root%\"}"
    printf '%s\n' "${root:-/var/lib/docker}"
}
# swarm_member: the engine joins a swarm when it starts: moby's cluster component restores a
# node from <data-root>/swarm/docker-state.json with its node certificate (daemon/cluster).
swarm_member() {
    local swarm
    swarm="$(data_root)/swarm"
    [ -f "$swarm/docker-state.json" ] && [ -f "$swarm/certificates/swarm-node.crt" ]
}

if docker_ready; then
    # An engine already running is left as its owner configured it (systemd, Docker Desktop,
    # an earlier bootstrap); only reported.
    log "docker engine running"
    engine_live_restore
    exit 0
fi
is_root || die "the Docker engine is not running and this user cannot start it; run: sudo dockerd & (or sudo systemctl start docker), or add this user to the docker group"
start="$(now_ms)"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/secure-redis-dockerd.log}"
# dockerd's configuration file (dockerd's own default; another path is passed to it).
DOCKERD_CONFIG="${DOCKERD_CONFIG:-/etc/docker/daemon.json}"
log "starting dockerd in the background (log: $DOCKERD_LOG)"
if have systemctl && systemctl start docker >/dev/null 2>&1; then
    : # the service's own flags and daemon.json; engine_live_restore reports the result
else
    dockerd_args=()
    [ "$DOCKERD_CONFIG" = /etc/docker/daemon.json ] || dockerd_args+=(--config-file "$DOCKERD_CONFIG")
    # dockerd refuses to start when an option is both a flag and in its configuration file,
    # so an option the file sets (either way) is left to the file.
    # live-restore (CIS Docker 2.14): containers keep running while the engine restarts, as
    # the stack's on-failure services are not restarted after it (docs/day2.md). A swarm
    # member cannot have it: dockerd then refuses to start ("failed to start cluster
    # component: --live-restore daemon configuration is incompatible with swarm mode").
    if [ -n "$(daemon_config live-restore)" ]; then
        if [ "$(daemon_config live-restore)" = true ] && swarm_member; then
            die "$DOCKERD_CONFIG sets live-restore and this engine is a swarm member ($(data_root)/swarm): dockerd would refuse to start (live-restore is incompatible with swarm mode); remove \"live-restore\" from $DOCKERD_CONFIG, or leave the swarm, then run this again"
        fi
        log "live-restore: as $DOCKERD_CONFIG sets it"
    elif swarm_member; then
        warn "this engine is a swarm member ($(data_root)/swarm), and live-restore is incompatible with swarm mode: dockerd starts without it, so the stack's containers stop when the engine stops or restarts (an up starts them again; docs/day2.md)"
    else
        dockerd_args+=(--live-restore)
    fi
    # The userland proxy stays on (CIS Docker 2.15 asks for it off), although docker-proxy is
    # the engine's child and the app's 127.0.0.1 port refuses connections while the engine
    # restarts. Measured with it off (docs/day2.md): the port still refused for 0.6 s, and
    # the engine turned route_localnet on for every bridge, so a container with the default
    # NET_RAW capability on any bridge reached a host service bound to 127.0.0.1.
    # Detached: the engine must outlive this script and the test run that called it, and must
    # not hold the caller's descriptors (the shared Docker lock, scripts/lib.sh).
    start_detached "$DOCKERD_LOG" dockerd "${dockerd_args[@]}"
fi
for _ in $(seq 1 60); do
    if docker_ready; then
        log "docker engine ready in $(elapsed "$start")"
        engine_live_restore
        exit 0
    fi
    sleep 0.5
done
tail -n 20 "$DOCKERD_LOG" >&2 || true
die "dockerd did not become ready within 30 s; the last lines of $DOCKERD_LOG are above"
