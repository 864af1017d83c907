# Shared helpers for the scripts in this folder. Source it; do not run it.
# Output is plain `component: message` lines so logs stay greppable.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '%s: %s\n' "${LOG_TAG:-secure-redis}" "$*"; }
warn() { printf '%s: warning: %s\n' "${LOG_TAG:-secure-redis}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${LOG_TAG:-secure-redis}" "$*" >&2; exit 1; }

# now_ms / elapsed START_MS: wall-clock timing for progress lines.
now_ms() { date +%s%3N; }
elapsed() { local ms=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }

is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

# docker_ready: the engine answers (not just the client binary being present).
docker_ready() { have docker && docker info >/dev/null 2>&1; }

require_venv() {
    [ -x "$PY" ] || die "no virtualenv at $VENV; run scripts/bootstrap.sh first"
}
