#!/usr/bin/env bash
# The one command: bring a stack up on the local Docker engine and prove it secure.
#
#   scripts/setup-secure-redis.sh [STACK] [--full]      STACK: dev (default), prod, ... (any
#                                                       Pulumi.STACK.yaml)
#
#   1. bootstrap   virtualenvs, system packages, Docker engine, debian:bookworm-slim
#   2. build       the app's wheelhouse (PyPI is not reachable inside `docker build`)
#   3. policy      the policy pack; a mandatory violation stops the deploy
#   4. deploy      `pulumi up --policy-pack policies` with the stack environment's policy config
#                  (scripts/pulumi-deploy.sh) when the Pulumi CLI is installed and logged in;
#                  otherwise the local applier (`python -m infra.apply up`), which deploys
#                  the same program and is not Pulumi
#   4b. firewall   host rules for the stack's bridges (infra/firewall.py; root only)
#   5. verify      the e2e suite against what runs (--full adds the disruptive fault tests)
#   6. summary     what runs, where the app listens, the security checks, how to tear down
#
# Re-running is an incremental up: only what changed is replaced; certificates, passwords, data
# keys and cached data are kept (the local applier diffs against its encrypted state).
set -euo pipefail
LOG_TAG=setup
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

usage="usage: scripts/setup-secure-redis.sh [STACK] [--full]"
stack=""
given=0
full=0
for arg in "$@"; do
    case "$arg" in
        --full) full=1 ;;
        -h | --help) print_usage; exit 0 ;;
        -*) die "unknown option $(shown "$arg"); $usage" ;;
        *) [ "$given" = 0 ] || die "one stack at a time ($(shown "$stack") and $(shown "$arg") given); $usage"
           stack="$arg"
           given=1 ;;
    esac
done
# dev only when no stack is given: an empty argument (an unset variable) is not a stack.
[ "$given" = 1 ] || stack=dev
require_stack "$stack"
# Every step is safe to run again, and the deploy's up is incremental: the rerun picks up where
# this one stopped (certificates, passwords, keys and data kept).
on_interrupt "run scripts/setup-secure-redis.sh $stack again: it finishes what this run began, keeping what is deployed"

total="$(now_ms)"

# -- 1. bootstrap ------------------------------------------------------------------------------
step "bootstrap: virtualenvs, packages, Docker engine" scripts/bootstrap.sh
step "bootstrap: base image" scripts/bootstrap-base-image.sh

# -- 2. build ----------------------------------------------------------------------------------
step "build: app wheelhouse (images are built by the deploy)" scripts/build-app-image.sh --wheelhouse-only

# -- 3 + 4. policy and deploy -------------------------------------------------------------------
pulumi_ready() { have pulumi && pulumi whoami --non-interactive >/dev/null 2>&1; }

deploy_with_pulumi() {
    log "Pulumi CLI found and logged in: pulumi up enforces the policy pack itself"
    scripts/pulumi-deploy.sh "$stack"
}

deploy_locally() {
    if have pulumi; then
        log "the Pulumi CLI is installed but not logged in (pulumi login); using the local applier"
    else
        log "no Pulumi CLI: checking the policy pack offline, then deploying with the local applier (not Pulumi)"
    fi
    local rc=0
    "$PY" -m policies.check --stack "$stack" || rc=$?
    case "$rc" in
        0) ;;
        1) die "mandatory policy violation(s) above: the deploy is stopped; fix the program or its settings" ;;
        *) die "the policy check could not run (exit $rc); see the message above" ;;
    esac
    "$PY" -m infra.apply up --stack "$stack" \
        || die "the local applier could not deploy '$stack'; see the message above"
}

deployed_with=""
deploy() {
    if pulumi_ready; then
        deployed_with="pulumi up"
        deploy_with_pulumi
    else
        deployed_with="the local applier (python -m infra.apply; not Pulumi)"
        deploy_locally
    fi
}
step "policy + deploy: stack $stack" deploy

# -- 4b. host firewall ---------------------------------------------------------------------------
# Docker 20.10 filters neither container -> host traffic nor loopback-published ports reached
# from an L2 neighbour; infra/firewall.py closes both for this stack's bridges (needs root).
firewall_state="not installed"
host_firewall() {
    local rc=0
    "$PY" -m infra.firewall up --stack "$stack" || rc=$?
    case "$rc" in
        0) firewall_state="installed (iptables chains SECURE-REDIS-$stack-IN/-FWD/-OUT)" ;;
        5) firewall_state="NOT installed (not root): the backend can reach this host and the app has open egress" ;;
        *) die "the host firewall rules could not be installed (exit $rc); see the message above" ;;
    esac
}
step "host firewall: stack $stack" host_firewall

# -- 5. verify ---------------------------------------------------------------------------------
summary_file="$(mktemp)"
trap 'rm -f "$summary_file"' EXIT
selection=(-m "e2e and not fault")
workers=2
# The fault tests stop and restart the stack's containers: one worker, in order.
[ "$full" = 1 ] && selection=(-m e2e) && workers=0
verify_rc=0
verify() {
    # Two workers: the checks only read the running stack (each worker has its own probe);
    # a file's tests stay on one worker, so the data tests' writes do not interleave.
    "$VENV/bin/pytest" tests/e2e --stack "$stack" "${selection[@]}" -q -p no:cacheprovider \
        -n "$workers" --dist loadfile --e2e-summary "$summary_file" || verify_rc=$?
}
step "verify: pytest tests/e2e --stack $stack ${selection[*]}" verify
# Its ACL probes are refused by design, and Redis counts each refusal (docs/verification.md):
# an alert right after a setup is this, said where the operator looks; only when the tests
# ran (pytest 0: all passed, 1: some failed), not when they could not start.
if [ "$verify_rc" -le 1 ]; then
    log "the verification asked Redis for what each user may not do, and was refused each time (about 390 NOPERM): a Prometheus already scraping stack $stack fires RedisAclDenials for the next 5 minutes, and Redis's ACL LOG holds those refusals (docs/verification.md)"
fi

# -- 6. summary --------------------------------------------------------------------------------
label="io.secure-redis.stack=$stack"
echo
echo "stack $stack deployed with $deployed_with"
echo
docker ps -a --filter "label=$label" --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
echo
echo "networks: $(docker network ls --filter "label=$label" --format '{{.Name}}' | sort | tr '\n' ' ')"
echo "volumes:  $(docker volume ls --filter "label=$label" --format '{{.Name}}' | sort | tr '\n' ' ')"
echo "images:   $(docker images --filter "label=$label" --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')"
# The app publishes one port (infra/components/app.py): whatever the image listens on.
binding="$(docker port "secure-redis-$stack-app" 2>/dev/null | head -n 1 | sed 's/.* -> //' || true)"
echo
echo "the app listens on http://${binding:-<not published>}/ (this host only): GET /healthz, GET /security-status, PUT|GET|DELETE /cache/{key}"
# The token goes to curl on its stdin: a command line is readable by every account
# (docs/client.md, "The service and its image").
echo "every route but /healthz needs its token, on the client's stdin, never its command line: docker exec secure-redis-$stack-app cat /etc/secure-cache/api.token | sed 's/^/Authorization: Bearer /' | curl -H @- http://${binding:-127.0.0.1:PORT}/security-status"
echo "Redis publishes no port: it is reachable only from the app, over TLS with client certificates, on secure-redis-$stack-backend"
echo "host firewall: $firewall_state"
"$PY" -m infra.engine_report || log "could not read docker info for the engine report"
echo
# Certificates' days to expiry and the data-key generation, from the deployment's state (the
# local applier's status then adds what a next up would change on the engine: none, just after it).
if [ "$deployed_with" = "pulumi up" ]; then
    pulumi stack output certificateExpiry --json --stack "$stack" || true
    pulumi stack output securitySummary --json --stack "$stack" | grep dataKeyGeneration || true
else
    "$PY" -m infra.apply status --stack "$stack" || true
fi
echo
# The same, as the running containers report them (the app's /metrics, the exporter's file).
"$ROOT/scripts/status.sh" "$stack" || true
echo
"$PY" "$ROOT/scripts/security_summary.py" "$summary_file"
echo
# The fault tests on this stack alone; the dev+prod isolation test needs both (test.sh's e2e).
[ "$full" = 1 ] || fault_tests_hint "$stack"
echo "tear down: scripts/teardown.sh $stack"
log "setup of $stack finished in $(elapsed "$total")"
[ "$verify_rc" = 0 ] || die "verification failed (pytest exit $verify_rc): the stack runs, but see the failures above"
