#!/usr/bin/env bash
# Days to expiry of every certificate and the data-key generation, read from the stack's containers.
#
#   scripts/status.sh [STACK]        STACK: dev (default), prod, ...
#
# Scrapes the app's /metrics from inside the app container (the API token never leaves it):
# the CA bundle, the Redis server certificate as Redis served it to the app, the app's client
# certificate, the data-key generation, the old API tokens still accepted; copies every other client certificate (exporter,
# rotation pass, Redis health check, reload jobs) out of the container that uses it, running
# or stopped, and the CA bundles Redis and the app trust (two CAs: a CA rollover is
# unfinished); what Redis's ACL LOG holds by reason and the failed AUTHs and ACL denials since
# Redis started (the exporter's /metrics, read inside its container); and says whether the
# engine keeps containers running while it restarts (live-restore). Exit: 0 every value read; 1 a value the stack does not report (`unknown`);
# 2 bad arguments; 3 the stack is not running or did not answer. What the next up would change
# (drift) it does not read: the last line points at `python -m infra.apply status` where this
# checkout's applier deployed the stack (lib.sh drift_hint says why it is not run from here).
set -euo pipefail
LOG_TAG=status
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

bad_input() { printf '%s: error: %s\n' "$LOG_TAG" "$*" >&2; exit 2; }
unavailable() { printf '%s: error: %s\n' "$LOG_TAG" "$*" >&2; exit 3; }

case "${1:-}" in
    -h | --help) print_usage; exit 0 ;;
esac
[ "$#" -le 1 ] || bad_input "usage: scripts/status.sh [STACK]"
# dev only when no stack is given: an empty argument (an unset variable) is not a stack.
if [ "$#" -eq 0 ]; then stack=dev; else stack="$1"; fi
valid_stack_name "$stack" \
    || bad_input "$(shown "$stack") is not a stack name: 1-31 lowercase letters, digits or '-', starting with a letter or digit"
[ -f "$ROOT/Pulumi.$stack.yaml" ] || bad_input "no stack '$stack': Pulumi.$stack.yaml does not exist (stacks: $(known_stacks))"
[ -x "$PY" ] || unavailable "no virtualenv at $VENV; run scripts/bootstrap.sh first"
docker_ready || unavailable "$(docker_unready)"

app="secure-redis-$stack-app"
running() { [ "$(docker inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
running "$app" || unavailable "$app is not running; deploy the stack with scripts/setup-secure-redis.sh $stack"

# Inside the app: GET its own /metrics on loopback with the token from its material volume.
# On any failure the snippet ends with one line naming the error (its class and message: a path
# or an HTTP status, never the token), not a traceback.
# HTTP_PORT: the port the app listens on, from its image (app/Dockerfile).
scrape='import os, sys, urllib.request
try:
    token = open("/etc/secure-cache/api.token").read().strip()
    url = "http://127.0.0.1:%s/metrics" % os.environ["HTTP_PORT"]
    request = urllib.request.Request(url,
        headers={"Authorization": "Bearer " + token, "Host": "127.0.0.1"})
    print(urllib.request.urlopen(request, timeout=10).read().decode())
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")'
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
# last_error: the last line the failed command wrote (the snippet's, or the engine's). It can
# quote what a container's server answered (an HTTP reason phrase), so a line with a control
# character is shown shell-escaped: a taken-over container wrote terminal escapes (a title, a
# cleared screen, a clipboard write) to the operator's terminal (tests/unit/test_status_script.py).
last_error() {
    local line
    line="$(tail -n 1 "$errors" | cut -c 1-300)"
    case "$line" in
        *[![:print:]]*) printf '%q' "$line" ;;
        *) printf '%s' "$line" ;;
    esac
}

collected="$(docker exec "$app" python3 -c "$scrape" 2>"$errors")" \
    || unavailable "$app did not answer its /metrics ($(last_error)); see docker logs $app"
# Redis's own view, from the exporter's /metrics inside its container (it listens on its
# frontend address, METRICS_HOST): what the ACL LOG holds now by reason and the failed AUTHs
# and ACL denials counted since Redis started. Counts only: the log's usernames, keys and
# client addresses stay in Redis (docs/monitoring.md).
exporter="secure-redis-$stack-redis-exporter"
redis_scrape='import os, sys, urllib.request
try:
    host = os.environ.get("METRICS_HOST") or "127.0.0.1"
    url = "http://%s:%s/metrics" % (host, os.environ.get("METRICS_PORT") or "9121")
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    kept = ("redis_up ", "redis_acl_log_entries{", "redis_acl_log_newest_age_seconds{",
            "redis_errors_total{")
    for line in text.splitlines():
        if line.startswith(kept):
            print("# redis " + line)
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")'
if line="$(docker exec "$exporter" python3 -c "$redis_scrape" 2>"$errors")"; then
    collected+=$'\n'"$line"
else
    warn "$exporter: its /metrics could not be read ($(last_error)); Redis's ACL LOG is shown as unknown"
fi
# Every other client certificate: `docker cp` reads a stopped container's volumes too (the
# rotation pass is declared stopped, the reload jobs exit); -L copies the file, not the symlink
# through `..data` that each material file is (infra/components/material.py).
# stack_status.py --not-after prints its `# consumer` line, or one line naming what is wrong
# with the copy; when the copy itself failed it prints nothing, and the engine's line is last.
while read -r name container path; do
    container="secure-redis-$stack-$container"
    if line="$(docker cp -L "$container:$path" - 2>"$errors" \
        | "$PY" "$ROOT/scripts/stack_status.py" --not-after "$name" 2>>"$errors")"; then
        collected+=$'\n'"$line"
    else
        warn "$container: its $name client certificate could not be read ($(last_error)); shown as unknown"
    fi
done < <("$PY" "$ROOT/scripts/stack_status.py" --consumers)
# The CA bundles Redis and the app trust: two CAs while a CA rollover is unfinished.
while read -r name container path; do
    container="secure-redis-$stack-$container"
    if line="$(docker cp -L "$container:$path" - 2>"$errors" \
        | "$PY" "$ROOT/scripts/stack_status.py" --trusted "$name" 2>>"$errors")"; then
        collected+=$'\n'"$line"
    else
        warn "$container: its CA bundle could not be read ($(last_error)); shown as unknown"
    fi
done < <("$PY" "$ROOT/scripts/stack_status.py" --bundles)
# Without live-restore an engine restart leaves the stack's services stopped (docs/day2.md).
if live_restore="$(docker info --format '{{json .LiveRestoreEnabled}}' 2>/dev/null)"; then
    collected+=$'\n'"# engine live-restore $live_restore"
fi
# Every container on the stack's two networks, with its stack label: stack_status.py names
# those that are not the program's own (one run there by hand reaches Redis's port from
# inside, where no host firewall rule applies).
attached() {
    local network name
    for network in "secure-redis-$stack-backend" "secure-redis-$stack-frontend"; do
        docker network inspect --format '{{range .Containers}}{{.Name}}{{"\n"}}{{end}}' \
            "$network" >"$errors" 2>&1 || return 1
        while read -r name; do
            [ -n "$name" ] || continue
            printf '# attached %s %s %s\n' "$network" "$name" "$(docker inspect --format \
                '{{index .Config.Labels "io.secure-redis.stack"}}' "$name" 2>/dev/null)"
        done <"$errors"
    done
}
if line="$(attached)"; then
    collected+=$'\n'"# networks read"$'\n'"$line"
fi
code=0
printf '%s\n' "$collected" | "$PY" "$ROOT/scripts/stack_status.py" "$stack" || code=$?
drift_hint "$stack"
exit "$code"
