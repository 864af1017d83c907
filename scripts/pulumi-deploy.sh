#!/usr/bin/env bash
# Deploy STACK with the Pulumi CLI; the policy pack enforces the config of the environment the
# stack declares (policies/strictness.py), so a production stack is never judged at the
# development floor, whatever its name.
#
#   scripts/pulumi-deploy.sh STACK      (scripts/setup-secure-redis.sh calls it when the CLI is
#                                        installed and logged in)
set -euo pipefail
LOG_TAG=setup
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
case "${1:-}" in -h | --help) print_usage; exit 0 ;; esac

[ "$#" -eq 1 ] || die "usage: scripts/pulumi-deploy.sh STACK"
stack="$1"
require_stack "$stack"
require_venv
config="$("$PY" -m policies.strictness --stack "$stack")" \
    || die "cannot tell which policy config stack '$stack' needs; see the message above"
log "policy config for $stack: $config"
pulumi stack select "$stack" --non-interactive \
    || die "pulumi has no stack '$stack'; run: pulumi stack init $stack"
pulumi up --yes --non-interactive --skip-preview --policy-pack policies \
    --policy-pack-config "$config" --stack "$stack" \
    || die "pulumi up failed (a mandatory policy violation stops it); see the output above"
