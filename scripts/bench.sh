#!/usr/bin/env bash
# The client benchmark: secure_cache against plaintext redis-py, its own TLS transport without
# the application layer, the seeds' TLS + Fernet design, py-key-value-aio's Fernet wrapper and
# redis-benchmark over TLS; then many callers on one client against redis-benchmark -c 50.
#
#   scripts/bench.sh [--rounds N] [--only sizes|concurrency] [--allocator service|default]
#                    [--placement split|shared|free]
#                (N >= 5, default 7; two to three minutes on 2 idle cores, 7.7 on busy ones;
#                 split, the default, puts the servers on the last CPU and the bench on the
#                 first, and needs two CPUs)
#
# Starts its own servers (a plaintext redis-server and a TLS-only one with the project's ACL)
# and removes them afterwards. Progress goes to stderr; stdout is a Markdown table, a summary
# and, on the last line, one JSON object (ratio_sequential, ratio_pipelined,
# encrypt_decrypt_us_1k, connect_ms_p50, ratio_vs_tls_transport, client_cpu_us_per_op,
# ratio_vs_ceiling_c50, their spreads, goals_met, goals_missed, ...). See scripts/bench.py
# and, for the targets, scripts/bench_goals.py.
set -euo pipefail
LOG_TAG=bench
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h | --help) print_usage; exit 0 ;; esac

require_venv
for tool in redis-server redis-benchmark; do
    have "$tool" || die "$tool not found; run scripts/bootstrap.sh (installs Debian's redis-server and redis-tools)"
done
"$PY" -c 'import key_value.aio' 2>/dev/null \
    || die "py-key-value-aio is missing from .venv; run scripts/bootstrap.sh (requirements.lock pins it)"
cd "$ROOT"
exec "$PY" "$ROOT/scripts/bench.py" "$@"
