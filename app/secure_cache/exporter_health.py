"""The Redis exporter container's health check: exit 0 when its own /metrics answers 200.

    python -m secure_cache.exporter_health     (also: python -m secure_cache.redis_exporter
                                                healthcheck)

The engine runs it every 5 s inside the exporter, whose CPU quota is a quarter of a core
(infra/components/exporter.py). Standard library only: through redis_exporter it loaded
redis, cryptography and prometheus_client first, 0.27 CPU-seconds a run on this project's
build machine, about a second of the quota at rest, and 13-20 s on a loaded host, past the
check's 5 s timeout. tests/unit/test_exporter_health.py keeps it to the standard library.
Whether Redis is up is what /metrics reports; this check asks only that it answers.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Final

from secure_cache.cli_parser import OneLineParser  # argparse only

DEFAULT_METRICS_PORT: Final = 9121  # the port oliver006/redis_exporter registered
TIMEOUT_S: Final = 3.0


def metrics_url(env: Mapping[str, str]) -> str | None:
    """Where `serve` listens, as the check asks it: METRICS_HOST (the deployed exporter's own
    address on the monitoring network, which metrics_server does not count against its caps),
    loopback for an address of every interface; None for a METRICS_PORT that is no number."""
    port = env.get("METRICS_PORT", "").strip() or str(DEFAULT_METRICS_PORT)
    if not (port.isascii() and port.isdigit()):
        return None
    host = env.get("METRICS_HOST", "").strip()
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


def healthcheck(env: Mapping[str, str]) -> int:
    """0 when /metrics answers 200, 1 when it does not, 2 for a METRICS_PORT that is no port."""
    url = metrics_url(env)
    if url is None:
        print("METRICS_PORT must be a port number", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:  # noqa: S310 - http:// above
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck failed: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    OneLineParser(
        prog="python -m secure_cache.exporter_health",
        description="Exit 0 when the Redis exporter's own /metrics (METRICS_HOST, METRICS_PORT) "
        "answers 200; 1 when it does not; 2 for a METRICS_PORT that is no port.",
    ).parse_args(argv)
    return healthcheck(os.environ)


if __name__ == "__main__":
    sys.exit(main())
