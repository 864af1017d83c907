"""Where `python -m secure_cache serve` listens, bound before the server's modules are imported.

The standard library only, on purpose: `serve` binds its sockets with this module, then imports
service.py (uvicorn, uvloop, the redis client, prometheus_client). A listening socket's backlog
holds the connections that arrive while those import and the first Redis connection is made,
and the server answers them once it serves; bound after the imports, the port refused them.
That start is part of every app replacement's outage (docs/day2.md, "A replaced container
keeps running until its successor is due": those imports took 0.34-2.1 s in the deployed app
on the loaded 2-core machine).
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from typing import Final

from secure_cache.errors import SecureCacheError

# Where the deployed app's health check connects (infra/components/app.py), so `serve` listens
# there whatever HTTP_HOST names (listen_addresses).
HEALTH_CHECK_ADDRESS: Final = "127.0.0.1"
WILDCARD_V4: Final = "0.0.0.0"  # noqa: S104 - HTTP_HOST may name it (the image's default)
# The kernel's queue of connections not yet accepted: those that arrive while the server starts.
BACKLOG: Final = 256


class ServeError(SecureCacheError):
    """The service could not start (e.g. the port is in use); the message says how to fix it."""


def listen_addresses(host: str) -> list[str]:
    """Where `serve` listens for HTTP_HOST `host`: its address (a name is resolved once, here),
    and HEALTH_CHECK_ADDRESS beside it unless it is that or the IPv4 wildcard. The deployed app
    sets HTTP_HOST to a name only its frontend network resolves (infra/components/app.py):
    with 0.0.0.0 a container on the backend network alone reached the API by the app's
    backend address (attack pass of 2026-12-03 on s92), while the health check probes
    loopback. A name that does not resolve raises OSError."""
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        address = socket.gethostbyname(host)
    if address in (WILDCARD_V4, HEALTH_CHECK_ADDRESS):
        return [address]
    return [address, HEALTH_CHECK_ADDRESS]


def bind(host: str, port: int) -> list[socket.socket]:
    """The listening sockets (listen_addresses), or ServeError naming the address and the fix."""
    sockets: list[socket.socket] = []
    address = host
    try:
        for address in listen_addresses(host):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.create_server((address, port), family=family, backlog=BACKLOG)
            sock.set_inheritable(True)
            sockets.append(sock)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = exc.strerror or type(exc).__name__
        raise ServeError(
            f"cannot listen on {address}:{port} ({reason}); stop what uses that "
            "port or set HTTP_PORT (and HTTP_HOST) to a free one"
        ) from None
    return sockets


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def stop_on_signals() -> None:
    """SIGTERM and SIGINT end the process with exit 0 from here on: a service still starting
    (importing, reaching Redis) at once, and a serving one once uvicorn, which catches both
    while it serves, raises the signal again after its graceful shutdown (service.serve)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)


__all__ = [
    "HEALTH_CHECK_ADDRESS",
    "ServeError",
    "bind",
    "listen_addresses",
    "stop_on_signals",
]
