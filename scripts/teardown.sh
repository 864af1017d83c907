#!/usr/bin/env bash
# Remove a stack from the local Docker engine.
#
#   scripts/teardown.sh [STACK]      STACK: dev (default), prod, ...
#
# With the Pulumi CLI logged in and a Pulumi stack of that name: `pulumi destroy` first. Then,
# always, every container, network, volume and image labelled io.secure-redis.stack=STACK is
# removed (what the local applier deployed, and anything left behind). Says so when there is
# nothing to remove. Safe to run again.
set -euo pipefail
LOG_TAG=teardown
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

case "${1:-}" in
    -h | --help) print_usage; exit 0 ;;
esac
[ "$#" -le 1 ] || die "usage: scripts/teardown.sh [STACK]"
# dev only when no stack is given: an empty argument (`teardown.sh "$STACK"` with STACK unset)
# must not tear down dev.
if [ "$#" -eq 0 ]; then stack=dev; else stack="$1"; fi
valid_stack_name "$stack" \
    || die "$(shown "$stack") is not a stack name: 1-31 lowercase letters, digits or '-', starting with a letter or digit"

# A stack removed by hand may have lost its file, so this is no refusal; but a mistyped name
# ("prdo") would otherwise end in "nothing to remove ... finished" as if the stack were gone.
[ -f "Pulumi.$stack.yaml" ] \
    || warn "no Pulumi.$stack.yaml in this checkout (stacks: $(known_stacks)); removing only what the engine holds labelled io.secure-redis.stack=$stack"

on_interrupt "some of stack $stack's objects may be left; run scripts/teardown.sh $stack again to remove the rest"
require_venv
docker_ready || die "$(docker_unready), then run this again"

start="$(now_ms)"
if have pulumi && pulumi whoami --non-interactive >/dev/null 2>&1 \
    && pulumi stack select "$stack" --non-interactive >/dev/null 2>&1; then
    log "pulumi destroy --stack $stack"
    pulumi destroy --yes --non-interactive --skip-preview --stack "$stack" \
        || die "pulumi destroy failed; see the output above"
fi
# The stack's host firewall rules (infra/firewall.py) go first; without root there are none
# this script could remove, and it says so.
fw_rc=0
"$PY" -m infra.firewall down --stack "$stack" || fw_rc=$?
[ "$fw_rc" = 0 ] || [ "$fw_rc" = 5 ] || die "could not remove the host firewall rules of '$stack'; see the message above"
"$PY" -m infra.apply down --stack "$stack" || die "could not remove every object of '$stack'; see the message above"
log "teardown of $stack finished in $(elapsed "$start")"
