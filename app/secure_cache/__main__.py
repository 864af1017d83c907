"""Command line: python -m secure_cache get|set|delete|status|rotate|serve|healthcheck.

    get KEY                    print the value (raw bytes) to stdout; exit 1 on a miss
    set KEY [VALUE] [--ttl N]  store VALUE (or stdin when VALUE is omitted)
    delete KEY                 exit 0 if something was removed, 1 otherwise
    status                     the status() JSON
    rotate [--batch-size N] [--max-batches N]
                               move previous keys' entries to the primary key; prints the
                               report JSON; exit 0 when complete, 3 when work remains
    serve                      run the HTTP service (service.py)
    healthcheck [--url URL]    GET the service's /healthz; exit 0 when it answers 200

Configuration comes from the environment (settings.py). Exit codes: 2 bad configuration,
4 Redis unavailable for a command that needs it. Logs go to stderr as `event=...` lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Final

from secure_cache.client import DEFAULT_ROTATION_BATCH, SecureCache
from secure_cache.errors import BackendUnavailable, ConfigurationError
from secure_cache.service import serve
from secure_cache.settings import DEFAULT_HTTP_PORT, ServiceSettings

EXIT_MISS: Final = 1
EXIT_CONFIG: Final = 2
EXIT_INCOMPLETE: Final = 3
EXIT_UNAVAILABLE: Final = 4
_HEALTH_TIMEOUT_S: Final = 3.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m secure_cache", description="Encrypted cache over TLS Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", help="print a value")
    get.add_argument("key")
    put = sub.add_parser("set", help="store a value")
    put.add_argument("key")
    put.add_argument("value", nargs="?", help="the value; read from stdin when omitted")
    put.add_argument("--ttl", type=int, default=None, help="seconds until it expires")
    delete = sub.add_parser("delete", help="remove a value")
    delete.add_argument("key")
    sub.add_parser("status", help="print the security status JSON")
    rotate = sub.add_parser("rotate", help="move entries to the primary data key")
    rotate.add_argument("--batch-size", type=int, default=DEFAULT_ROTATION_BATCH)
    rotate.add_argument("--max-batches", type=int, default=None)
    sub.add_parser("serve", help="run the HTTP service")
    health = sub.add_parser("healthcheck", help="probe the running service's /healthz")
    health.add_argument("--url", default=None)
    return parser


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="ts=%(asctime)s level=%(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def _healthcheck(url: str | None) -> int:
    if url is None:
        port = os.environ.get("HTTP_PORT", "").strip() or str(DEFAULT_HTTP_PORT)
        url = f"http://127.0.0.1:{port}/healthz"
    if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        print("healthcheck only probes the local service", file=sys.stderr)
        return EXIT_CONFIG
    try:
        with urllib.request.urlopen(url, timeout=_HEALTH_TIMEOUT_S) as reply:  # noqa: S310 - local http only
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck failed: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "healthcheck":
        return _healthcheck(args.url)
    _configure_logging()
    try:
        service_settings = ServiceSettings.from_env() if args.command == "serve" else None
        cache = SecureCache.from_env()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    if service_settings is not None:
        serve(cache, service_settings)
        return 0
    with cache:
        return _COMMANDS[args.command](cache, args)


def _get(cache: SecureCache, args: argparse.Namespace) -> int:
    value = cache.get(args.key)
    if cache.backend != "redis":
        print("redis is unavailable; cannot read", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if value is None:
        return EXIT_MISS
    sys.stdout.buffer.write(value)
    sys.stdout.flush()
    return 0


def _set(cache: SecureCache, args: argparse.Namespace) -> int:
    value = args.value.encode() if args.value is not None else sys.stdin.buffer.read()
    cache.set(args.key, value, args.ttl)
    if cache.backend != "redis":
        # A CLI process exits right away: a value kept only in its memory would be lost.
        print("redis is unavailable; the value was not stored", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


def _delete(cache: SecureCache, args: argparse.Namespace) -> int:
    removed = cache.delete(args.key)
    if cache.backend != "redis":
        print("redis is unavailable; nothing was deleted", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0 if removed else EXIT_MISS


def _status(cache: SecureCache, _args: argparse.Namespace) -> int:
    _print_json(cache.status())
    return 0


def _rotate(cache: SecureCache, args: argparse.Namespace) -> int:
    try:
        report = cache.rotate(batch_size=args.batch_size, max_batches=args.max_batches)
    except BackendUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_UNAVAILABLE
    _print_json(report.as_dict())
    return 0 if report.complete else EXIT_INCOMPLETE


def _print_json(payload: object) -> None:
    json.dump(payload, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


_COMMANDS: Final[dict[str, Callable[[SecureCache, argparse.Namespace], int]]] = {
    "get": _get,
    "set": _set,
    "delete": _delete,
    "status": _status,
    "rotate": _rotate,
}


if __name__ == "__main__":
    sys.exit(main())
