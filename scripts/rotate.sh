#!/usr/bin/env bash
# Renew or rotate material in place on a running stack, and report what changed.
#
#   scripts/rotate.sh STACK (certs|passwords|data-key|ca|api-token|api-token-retire|all)
#
#   certs      raise certRenewalGeneration: every leaf certificate is reissued (one up)
#   passwords  raise passwordRotationGeneration: each ACL user gets a new password beside the
#              old one (ROTATE), clients switch, the next up removes the old one (SET)
#   data-key   raise dataKeyGeneration: a new primary key, the old one kept for reading; the
#              rotation pass (its own container and ACL user, started here) moves every
#              entry; dataKeyKeepPrevious 0 retires the old
#              key, then it is set back (an up that rewrites nothing). Last, Redis rewrites
#              its append-only file (asked by the exporter's identity, waited for, and its
#              data directory checked: infra/rotation_probe.py rewrite-aof), so no entry
#              sealed with the retired key stays in Redis's files. A pass that left
#              entries of a newer secure-cache (exit 7, after a rollback) stops it there,
#              the old key kept
#   ca         raise caRolloverGeneration: the new CA is trusted beside the old one, then
#              issues every certificate, then the old one is dropped (three ups)
#   api-token  raise apiTokenRotationGeneration: the app gets a new API token and keeps
#              accepting the old one beside it (one up); switch your clients to the new one
#              (it is never printed: read it as the README says), then run api-token-retire.
#              Until then every up (a setting changed, an upgrade) keeps the old token
#              accepted. With a rotation still pending (its old token not retired) it refuses,
#              nothing changed: another would drop that token at once
#   api-token-retire
#              raise apiTokenRetireGeneration to apiTokenRotationGeneration, one up: the old
#              API token is refused from then on. With none pending (the app accepts no earlier
#              token) it says there is nothing to retire and exits 0 without an up, as
#              `teardown.sh` does with nothing to remove
#   all        an API token pending first retired (its own up), then certs, passwords,
#              data-key, ca, then api-token and api-token-retire at once (the stack's own
#              scripts read the token from the app's volume at each use; clients holding a
#              copy of the old one must take the new one)
#
# One rotate.sh of a stack at a time: it holds the stack's lock from its first look to its
# report, and any other up, down, rekey, setting change or rotation of the stack is refused
# meanwhile, naming it (docs/day2.md, "Two rotations, or an up, at once").
#
# A rotation of the same kind found half done (an earlier run interrupted, or an up that took
# one step of several) is finished instead of started again: another data key on top of an
# unfinished one would retire the key its entries are still sealed with.
#
# Every step is a change of the stack's settings (Pulumi.STACK.yaml) applied by an `up` of the
# program: `pulumi up` where the Pulumi CLI is logged in, the local applier
# (`python -m infra.apply up`) otherwise; both read that file. Neither Redis nor the app is
# restarted: new material reaches them by their material volumes, Redis reloads it (CONFIG SET,
# ACL LOAD), the app reads its files again. After each up the script waits until every consumer
# uses what it was given (infra/rotation_probe.py); a container restarted meanwhile by anyone
# else is named, and the step judged by what its consumers use (docs/day2.md).
set -euo pipefail
LOG_TAG=rotate
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

usage="usage: scripts/rotate.sh STACK (certs|passwords|data-key|ca|api-token|api-token-retire|all)"
[ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && { print_usage; exit 0; }
[ "$#" -eq 2 ] || die "$usage"
stack="$1"
kind="$2"
case "$kind" in
    certs | passwords | data-key | ca | api-token | api-token-retire | all) ;;
    *) die "unknown rotation $(shown "$kind"); $usage" ;;
esac
require_stack "$stack"
# Interrupted anywhere (a snapshot, an up, the pass: docker passes the Ctrl-C on and the pass
# stops, not retried), the rerun finishes what was begun: the kinds of several ups find their
# rotation half done, and a bump made but not applied is applied by the rerun's own (one
# generation more; no key or certificate is skipped). Not put back here: once its up has begun,
# a lowered setting would be below what the stack runs with.
on_interrupt "the stack may be part-way through this rotation (an up records each step it finished); run scripts/rotate.sh $stack $kind again: a rotation found half done is finished, not started again"
require_venv
docker_ready || die "the Docker engine is not reachable; run scripts/bootstrap.sh"
# One rotation of a stack at a time, and no other change of it meanwhile: the whole run holds
# the stack's lock (infra/rotation_lock.py takes it and execs this script again, same pid), and
# hands it to its own ups, settings and looks, while any other up, down, rekey, setting change
# or rotation of the stack is refused naming this run. Each up held it for itself only before,
# and between the steps another run's up or setting slipped in (docs/day2.md, "Two rotations,
# or an up, at once"). Refused: one line, exit 1, nothing changed.
case "${SECURE_REDIS_STACK_LOCK:-}" in
    "$stack":*) ;;
    *) exec "$PY" -m infra.rotation_lock --stack "$stack" --kind "$kind" -- "$ROOT/scripts/rotate.sh" "$@" ;;
esac
# The lock's descriptor, closed for the commands that need no lock and may outlive this run:
# `docker start --attach` passes a Ctrl-C to the rotation pass and waits for its container, so
# it held the lock after an interrupted rotate.sh had ended, and the rerun was refused.
lock_fd="${SECURE_REDIS_STACK_LOCK##*:}"

pulumi_ready() { have pulumi && pulumi whoami --non-interactive >/dev/null 2>&1; }
# The probe trusts only the stack's own Redis and app: labelled as its, and, when the local
# applier deploys it, running the images the applier's state records (--applier-state; under
# `pulumi up` that state, if any, is not what deployed the stack).
if pulumi_ready; then
    deployer="pulumi up"
    probe_state=""
else
    deployer="the local applier (python -m infra.apply; not Pulumi)"
    probe_state="--applier-state"
fi

config_get() { "$PY" -m infra.stack_config get --stack "$stack" "$1"; }
config_set() { # config_set KEY VALUE: the same file for both deployers
    if pulumi_ready; then
        pulumi config set --stack "$stack" "secure-redis:$1" "$2" --non-interactive \
            || die "pulumi config set secure-redis:$1 failed; nothing was deployed by this step (see above)"
    else
        "$PY" -m infra.stack_config set --stack "$stack" "$1" "$2" >/dev/null \
            || die "cannot set secure-redis:$1 in Pulumi.$stack.yaml; nothing was deployed by this step (see above)"
    fi
    log "set secure-redis:$1 = $2 in Pulumi.$stack.yaml"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
probe() { "$PY" -m infra.rotation_probe "$@" --stack "$stack" ${probe_state:+"$probe_state"}; }

unobservable() { # the probe could not look at the stack; its line above says why and what to run
    # The way on is the probe's to give (infra/rotation_probe.py way_on): it knows the cause (a
    # container missing, stopped, not the stack's, the engine away, the API not answering).
    die "stack $stack could not be observed; nothing was changed by this step (the line above says why and what to run)"
}

# The setting the last bump raised, and its value before, until the up that applies it runs:
# a step refused before its up (an up of someone else running, the guard) puts it back, so
# "nothing was changed" holds for Pulumi.STACK.yaml too and the next plain up does not start
# the rotation unchecked.
raised_key=""
raised_from=""

unraise() { # put back the setting the last bump raised, when its up never ran
    [ -n "$raised_key" ] || return 0
    config_set "$raised_key" "$raised_from"
    raised_key=""
}

snapshot_failed() { # snapshot_failed CODE: a step's snapshot failed, before its up
    unraise
    # 4: an up of the stack is running (the probe's line names it); else the stack is unwell.
    [ "$1" -ne 4 ] || die "nothing was changed by this step (see the line above)"
    unobservable
}

up() { # up WHY: one up of the program, then wait until every consumer uses the result
    local start
    start="$(now_ms)"
    log "up ($1) with $deployer"
    # The looks before and after the up take seconds each under load (infra/rotation_probe.py
    # PROGRESS_EVERY_S): each is named, and says every 10 s that it still runs.
    log "reading what Redis and the app use before the up"
    probe snapshot >"$work/step.json" || snapshot_failed $?
    # Redis serving another CA's certificate than its volume's issuer: a promote whose TLS
    # reload did not take, so this up (the retire step) would lock the reload job out. The
    # probe's line says what to run; the local applier asks the same before its up.
    probe guard --before "$work/step.json" || { unraise; die "nothing was changed by this step (see the line above)"; }
    if pulumi_ready; then
        raised_key=""
        pulumi up --yes --non-interactive --skip-preview --policy-pack policies --stack "$stack" \
            || die "pulumi up failed; the stack keeps what it had (see above)"
    else
        local code=0
        "$PY" -m infra.apply up --stack "$stack" || code=$?
        # Exit 2 is a refusal before anything changed (docs/applier.md): the
        # stack's lock held by another up, among others.
        [ "$code" -ne 2 ] || unraise
        raised_key=""
        [ "$code" -eq 0 ] || die "the local applier failed; the stack keeps what it had (see above)"
    fi
    log "waiting until Redis and the app use what the up gave them"
    probe wait --before "$work/step.json" \
        || die "the consumers did not all switch to the new material after this up (the lines above say what each still waits for); scripts/status.sh $stack says what answers, then run scripts/rotate.sh $stack $kind again: a rotation found half done is finished, not started again"
    log "up ($1) done, every consumer switched ($(elapsed "$start"))"
}

whole_setting() { # whole_setting KEY: print an integer setting, refused unless plainly written
    local current
    current="$(config_get "$1")" || die "cannot read secure-redis:$1 of stack $stack"
    # The settings loader takes what int() takes ("010", "+5", "1_0"); bash arithmetic would read
    # "010" as 8, fail on "08", and run a command substitution in `a[$(cmd)]`.
    whole_number "$current" \
        || die "secure-redis:$1 of stack $stack is $(shown "$current"), not a plain whole number; write it as one with python -m infra.stack_config set --stack $stack $1 VALUE, then run this again"
    printf '%s\n' "$current"
}

raise_to() { # raise_to KEY VALUE: set an integer setting the next up applies (unraise undoes it)
    local current
    current="$(whole_setting "$1")"
    config_set "$1" "$2"
    raised_key="$1"
    raised_from="$current"
}

bump() { # bump KEY: raise an integer setting by one
    local current
    current="$(whole_setting "$1")"
    raise_to "$1" "$((current + 1))"
}

rotate_certs() {
    bump certRenewalGeneration
    up "renew every leaf certificate"
}

# unfinished KIND: why the stack was found with a KIND rotation half done when this run began
# (an interrupted rotate.sh, or an up that took one step of several); empty when it was not.
unfinished() { # unfinished KIND [SNAPSHOT]: of the snapshot before this run, or SNAPSHOT
    "$PY" -m infra.rotation_probe unfinished --stack "$stack" --kind "$1" \
        --before "${2:-$work/before.json}"
}

resuming() { # resuming KIND WHY: say that the half-done rotation is finished, not restarted
    warn "a $1 rotation was left unfinished ($2): finishing it instead of starting another on top"
}

rotate_passwords() {
    local why
    why="$(unfinished passwords)"
    if [ -n "$why" ]; then
        resuming passwords "$why"
    else
        bump passwordRotationGeneration
        up "passwords ROTATE: new beside old"
    fi
    up "passwords SET: old removed"
}

rotate_ca() {
    local why step
    why="$(unfinished ca)"
    if [ -z "$why" ]; then
        bump caRolloverGeneration
        up "CA rollover 1/3: new CA trusted beside the old"
        up "CA rollover 2/3: new CA issues every certificate"
        up "CA rollover 3/3: old CA retired"
        return
    fi
    # Introduced or promoted: each up takes the next step, until one CA is trusted.
    resuming ca "$why"
    for step in 1 2; do
        up "CA rollover: the next step of the unfinished one ($step of at most 2)"
        probe snapshot >"$work/now.json" || die "stack $stack stopped answering; run scripts/rotate.sh $stack ca again"
        [ -n "$(unfinished ca "$work/now.json")" ] || return 0
    done
    die "the CA rollover did not finish in two ups; see the output above"
}

rotate_data_key() {
    local keep why
    keep="$(config_get dataKeyKeepPrevious)"
    [ "$keep" -ge 1 ] || keep=1
    config_set dataKeyKeepPrevious "$keep"
    why="$(unfinished data-key)"
    if [ -n "$why" ]; then
        # Another key now would retire the one the entries not yet moved are sealed with
        # (keepPrevious keeps the newest only): they would be lost. Run the pass instead.
        resuming data-key "$why"
    else
        bump dataKeyGeneration
        up "data key: new primary, the old one kept for reading"
    fi
    log "rotation pass: moving every entry to the new key"
    # The pass is safe to interrupt and run again (docs/client.md, "Key rotation"): a
    # transient failure gets it run again, up to three times. A Redis restart is not retried
    # away: the probe after the next up fails on it. (The one failure seen under load was Redis OOM-killed mid AOF rewrite;
    # infra/redis_conf.py min_memory_limit_mb sizes the limit against that.)
    # It runs in its own container under its own ACL user (infra/components/rotation.py): the
    # serving app may not WATCH. The program declares that container stopped; this starts it
    # and waits for its exit code. It reads its files at start, so it has the new key.
    # Exit 7 (README, "Exit codes"): the pass left entries a newer secure-cache wrote (the app
    # was rolled back; docs/day2.md, "Rolling back the app"). Running it again cannot move them, and
    # retiring the old key below would make them unreadable for good: stop here, key kept.
    local attempt code pass="secure-redis-$stack-rotation"
    for attempt in 1 2 3; do
        code=0
        docker start --attach "$pass" {lock_fd}>&- || code=$?
        [ "$code" -ne 0 ] || break
        [ "$code" -ne 7 ] || die "the rotation pass left entries written by a newer secure-cache on the old data key (its line above says how many): the app was rolled back. Those entries were not deleted and the old key stays (dataKeyKeepPrevious $keep), so the rotation is NOT complete. Deploy the newer app again (an up from its checkout), then run scripts/rotate.sh $stack data-key: it finishes this rotation"
        [ "$attempt" -lt 3 ] || die "the rotation pass did not finish; run it again: docker start --attach $pass"
        warn "the rotation pass stopped (attempt $attempt of 3); running it again"
        sleep 2
    done
    config_set dataKeyKeepPrevious 0
    up "data key: old key retired"
    config_set dataKeyKeepPrevious "$keep"
    up "data key: dataKeyKeepPrevious back to $keep for the next rotation"
    # Redis's append-only file still holds every write since its last rewrite: the envelopes
    # sealed with the retired key among them (docs/day2.md, "What a retirement leaves").
    # After the retire, so that nothing sealed with the old key can be written after it.
    log "rewriting Redis's append-only file: no entry sealed with the retired key stays on disk"
    probe rewrite-aof \
        || die "the data key is rotated and the old one retired, but Redis's files on disk may still hold entries sealed with it (the lines above say what and what to do); once done, python -m infra.rotation_probe rewrite-aof --stack $stack rewrites and checks them again"
}

rotate_api_token() {
    bump apiTokenRotationGeneration
    up "API token ROTATE: a new token, the old one still accepted"
    # Where operators read the token (docs/client.md, "The service and its image"); never
    # printed here.
    log "the new API token: docker exec secure-redis-$stack-app cat /etc/secure-cache/api.token"
    log "the old one stays accepted, through any other up, until scripts/rotate.sh $stack api-token-retire; run it once every client uses the new one"
}

retire_api_token() {
    # The old token is held through every up until the retire generation reaches the
    # rotation's (infra/providers/secrets.py): an up for anything else refused it before.
    raise_to apiTokenRetireGeneration "$(whole_setting apiTokenRotationGeneration)"
    up "API token SET: the old token retired"
}

total="$(now_ms)"
# Every kind may end at the first look with nothing changed (a token rotation pending or none
# to retire, an up that would replace Redis or the app): "rotating" waits until the checks
# below passed, so that a refused or empty run never said it.
case "$kind" in
    api-token | api-token-retire) log "stack $stack: reading whether an API token rotation waits for its retire" ;;
    *) log "stack $stack: reading the running stack before its $kind rotation" ;;
esac
probe snapshot >"$work/before.json" || snapshot_failed $?
# A CA rollover half done: every up takes its next step (infra/providers/certificates.py), so a
# rotation of another kind would take it too, unasked and unreported (`rotate.sh S certs`
# ended "certs rotated in place" having promoted the new CA, walkthrough of 2026-12-06), and on
# top of an introduce whose material Redis never loaded, its reload failed and left Redis
# unverifiable by the app. Refused, nothing changed: the CA is finished by its own kind first.
if [ "$kind" != ca ]; then
    ca_unfinished="$(unfinished ca)"
    [ -z "$ca_unfinished" ] \
        || die "stack $stack: a CA rollover is unfinished ($ca_unfinished); every up takes its next step, so this $kind rotation would too. Finish it first with scripts/rotate.sh $stack ca, then run this again; nothing was changed"
fi
case "$kind" in
    # `all` rotates the token too: a pending one is retired first, by its own up, as the
    # api-token refusal below asks (the provider refuses a rotation on top of it).
    all) pending="$(unfinished api-token)" ;;
    api-token | api-token-retire)
        # Asked in an assignment, as the other kinds ask, so that its failure stops the run
        # (set -e) instead of reading as "nothing pending".
        pending="$(unfinished api-token)"
        # A second rotation on a pending one makes the pending new token the old one and drops
        # the token before it (infra/providers/secrets.py update keeps one previous value):
        # clients still holding it got 401 at once, with no word. Refused, nothing changed.
        [ "$kind" != api-token ] || [ -z "$pending" ] \
            || die "stack $stack: an API token rotation is still pending ($pending); another now would refuse that earlier token at once. Once every client uses the current token (docker exec secure-redis-$stack-app cat /etc/secure-cache/api.token), run scripts/rotate.sh $stack api-token-retire, then this again; nothing was changed"
        # Nothing pending: an up here changed no token, applied whatever else was pending (a
        # new image, a setting) unasked, and the report called it "rotated in place".
        if [ "$kind" = api-token-retire ] && [ -z "$pending" ]; then
            log "stack $stack: nothing to retire: the app accepts no earlier API token (no scripts/rotate.sh $stack api-token waits for its retire); nothing was changed"
            exit 0
        fi ;;
esac
# An up applies everything pending, not only the rotation's setting. Run right after the
# checkout was upgraded (a new app image) or a setting was changed, rotate.sh's first up
# replaced the app: the clients' requests failed for 14.7 s, and the report said the app was
# replaced "(not by rotate.sh)" (s76, 2026-12-03: docs/day2.md, "Upgrading a deployed
# stack"). A rotation restarts neither Redis nor the app, so that up is refused here, before
# anything changes. The plan is the local applier's: under `pulumi up` its state, if any, did
# not deploy the stack.
if ! pulumi_ready; then
    replacing="$("$PY" -m infra.apply plan --stack "$stack" 2>/dev/null \
        | grep -E -m1 "^apply: +replace +container secure-redis-$stack-(app|redis)( |$)" \
        | sed -E 's/^apply: +//' || true)"
    [ -z "$replacing" ] \
        || die "stack $stack: the next up would also $replacing, which is no part of a rotation (a checkout upgraded or a setting changed since the last up); a rotation restarts neither Redis nor the app, and this replacement cuts the clients' requests while it runs. Apply it on its own first: python -m infra.apply up --stack $stack (scripts/setup-secure-redis.sh $stack also builds the app's wheelhouse), then run this again; nothing was changed"
fi
log "stack $stack: rotating $kind in place with $deployer"
case "$kind" in
    certs) rotate_certs ;;
    passwords) rotate_passwords ;;
    data-key) rotate_data_key ;;
    ca) rotate_ca ;;
    api-token) rotate_api_token ;;
    api-token-retire) retire_api_token ;;
    all)
        [ -z "$pending" ] || retire_api_token
        rotate_certs; rotate_passwords; rotate_data_key; rotate_ca; rotate_api_token; retire_api_token ;;
esac
code=0
probe report --before "$work/before.json" --kind "$kind" || code=$?
[ "$code" -ne 3 ] || die "stack $stack could not be observed after the rotation's ups (the line above says why and what to run); then scripts/rotate.sh $stack $kind again finishes it if it is half done"
[ "$code" -eq 0 ] || die "the rotation did not change what it should have (see above)"
# A restart by someone else meanwhile was named above as a warning; rotate.sh restarts neither.
log "stack $stack: $kind rotated in place in $(elapsed "$total"); rotate.sh restarted neither Redis nor the app"
