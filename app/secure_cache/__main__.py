"""Command line: python -m secure_cache get|set|delete|status|rotate|serve|healthcheck.

    get KEY                    print the value (raw bytes) to stdout; exit 1 on a miss
    set KEY [VALUE] [--ttl N]  store VALUE (or stdin when VALUE is omitted; an empty stdin
                               is refused: `set KEY ''` stores an empty value)
    delete KEY                 exit 0 if something was removed, 1 otherwise
    status                     the status() JSON
    rotate [--batch-size N] [--max-batches N]
                               move previous keys' entries to the primary key; prints the
                               report JSON; exit 0 when complete, 3 when work remains,
                               7 when it left entries a newer secure-cache wrote
    serve                      run the HTTP service (service.py)
    healthcheck [--url URL]    GET the service's /healthz; exit 0 when it answers 200

Configuration comes from the environment (settings.py). Logs go to stderr as `event=...` lines;
every failure is one line on stderr, never a traceback. Exit codes (README, "Exit codes"):

    0  done
    1  miss: no such key (get, delete), or the service is not healthy (healthcheck)
    2  bad input: arguments or configuration; nothing was done
    3  rotate: entries remain on an old key (run it again)
    4  Redis unavailable; the line on stderr says why (network, TLS, certificate, auth)
    5  Redis refused the command (ACL NOPERM or another error); nothing was stored (rotate:
       the user may not run the pass, which needs the rotation ACL user)
    6  the service could not start (e.g. its port is in use)
    7  rotate: entries written by a newer secure-cache (a rollback) were left on an old key,
       not deleted; running the pass again cannot move them: upgrade the app, then rotate
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from secure_cache.cli_parser import EXIT_USAGE, OneLineParser, reader_gone, say
from secure_cache.errors import (
    BackendUnavailable,
    CommandRejected,
    ConfigurationError,
    shown,
)
from secure_cache.int_settings import http_port, whole_number

# The client (redis, cryptography) is imported by the commands that use it, not here:
# `healthcheck` is the image's HEALTHCHECK, run every 15 s, and needs the standard library
# alone (secure_cache/int_settings.py; tests/unit/test_app_healthcheck.py).
if TYPE_CHECKING:
    from secure_cache.client import SecureCache

EXIT_OK: Final = 0
EXIT_MISS: Final = 1
EXIT_INCOMPLETE: Final = 3
EXIT_UNAVAILABLE: Final = 4
EXIT_REFUSED: Final = 5
EXIT_SERVE: Final = 6
EXIT_NEWER: Final = 7
_HEALTH_TIMEOUT_S: Final = 3.0
# How much of the reason a failed health check quotes (the URL: errors.SHOWN_CHARS).
_SHOWN_REASON: Final = 160
# `set KEY < FILE` reads at most this much: Redis's default proto-max-bulk-len, the largest
# value it stores (the stack sets 2 MiB). `set k < /dev/zero` read until memory ran out.
MAX_STDIN_VALUE_BYTES: int = 512 << 20
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_TTL_SECONDS: Final = 10 * 365 * 86400
MODULE_PROG: Final = "python -m secure_cache"
CONSOLE_PROG: Final = "secure-cache"  # app/pyproject.toml [project.scripts]


def _key(text: str) -> str:
    from secure_cache.crypto import MAX_LOGICAL_KEY_BYTES  # noqa: PLC0415 - see the imports

    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("the key is not valid UTF-8") from None
    if not 0 < size <= MAX_LOGICAL_KEY_BYTES:
        raise argparse.ArgumentTypeError(
            f"a key is 1-{MAX_LOGICAL_KEY_BYTES} bytes of UTF-8 (got {size})"
        )
    return text


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = whole_number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number in the digits 0-9, got {text[:20]!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Encrypted cache over TLS Redis.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    get = sub.add_parser("get", help="print a value")
    get.add_argument("key", type=_key)
    put = sub.add_parser("set", help="store a value")
    put.add_argument("key", type=_key)
    put.add_argument(
        "value",
        nargs="?",
        help="the value; read from stdin when omitted ('' stores an empty value)",
    )
    put.add_argument(
        "--ttl", type=_bounded(1, _MAX_TTL_SECONDS), default=None, help="seconds until it expires"
    )
    delete = sub.add_parser("delete", help="remove a value")
    delete.add_argument("key", type=_key)
    sub.add_parser("status", help="print the security status JSON")
    rotate = sub.add_parser("rotate", help="move entries to the primary data key")
    # None: the client's DEFAULT_ROTATION_BATCH (_rotate), read once the client is loaded.
    rotate.add_argument("--batch-size", type=_bounded(1, 100_000), default=None)
    rotate.add_argument("--max-batches", type=_bounded(1, 10**9), default=None)
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
    # The service's libraries log their own one-liners; never a traceback (uvicorn's error
    # logger would attach one to an application exception, which http_api.py never lets out).
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _healthcheck(url: str | None) -> int:
    if url is None:
        problems: list[str] = []
        port = http_port(os.environ, problems)
        if problems:
            print(f"healthcheck: {problems[0]}", file=sys.stderr)
            return EXIT_USAGE
        url = f"http://127.0.0.1:{port}/healthz"
    try:
        parts = urlsplit(url)
        scheme, netloc, host = parts.scheme, parts.netloc, parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        # urlsplit itself refuses an unclosed '[' ("http://[::1"): `parts` was unbound then,
        # and the check below raised UnboundLocalError, a traceback.
        scheme, netloc, host = "", "", None
    # Neither line echoes the URL: it may hold user:password@ ("did not answer" printed it).
    # Where it points is judged first: http://localhost@evil.com/ is a probe of evil.com.
    if scheme != "http" or host not in _LOCAL_HOSTS:
        print(
            "healthcheck: only probes the local service: http://127.0.0.1:<port>/healthz "
            "(a port from 1 to 65535)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not (url.isascii() and url.isprintable()) or " " in url:
        # http.client refused a space or a control character with an InvalidURL traceback,
        # and a non-ASCII path was "did not answer 200 (ordinal not in range(128))", exit 1.
        print(
            "healthcheck: --url holds a space, a control character or a non-ASCII character; "
            "give http://127.0.0.1:<port>/healthz",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if "@" in netloc:  # urllib would not send it
        print(
            "healthcheck: /healthz takes no credentials; drop user:password@ from --url",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Here, not at the top: `serve` imports this file before it listens, and urllib.request
    # (http.client, email, ssl) was 0.15-0.85 s of that on the loaded 2-core machine
    # (app/secure_cache/listen.py says why that matters).
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=_HEALTH_TIMEOUT_S) as reply:  # noqa: S310 - local http only
            return EXIT_OK if reply.status == 200 else EXIT_MISS
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        # Bounded and escaped as every message quotes a value (errors.shown): a --url of
        # thousands of characters was repeated whole, and the reason is the library's text.
        print(
            f"healthcheck: {shown(url)} did not answer 200 ({shown(str(reason), _SHOWN_REASON)})",
            file=sys.stderr,
        )
        return EXIT_MISS


def _serve() -> int:
    from secure_cache.allocator import keep_freed_memory  # noqa: PLC0415 - see the imports
    from secure_cache.listen import ServeError, bind, stop_on_signals  # noqa: PLC0415
    from secure_cache.settings import ServiceSettings, Settings  # noqa: PLC0415

    stop_on_signals()
    try:
        service_settings = ServiceSettings.from_env()
        Settings.from_env()  # every problem of both, before binding the port
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    keep_freed_memory()  # before the first request's buffers (allocator.py says why)
    try:
        sockets = bind(service_settings.host, service_settings.port)
    except ServeError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_SERVE
    try:
        # uvicorn, uvloop and the client only now: connections wait in the listening
        # sockets' backlog meanwhile instead of being refused (listen.py says why).
        from secure_cache.service import serve  # noqa: PLC0415

        serve(service_settings, sockets)
    finally:
        for sock in sockets:
            sock.close()
        # The service has stopped: its Redis connections are closed and its last line is
        # logged. The interpreter's exit then ran full collections over every object the
        # imports made (about 52,000): 0.5-0.8 s on the loaded 2-core machine, a replaced
        # app's stop during which its successor cannot start (docs/day2.md, "A replaced
        # container keeps running until its successor is due"). Frozen, the collections skip
        # them: 0.03-0.07 s.
        gc.freeze()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, prog: str = MODULE_PROG) -> int:
    """Run one command; `prog` is how the usage and error lines name the program."""
    parser = _parser(prog)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "set":
        # What is left over may be the rest of an unquoted value (`set k my secret words`) or
        # a value that starts with '-', which argparse reads as an option: not echoed.
        parser.exit(
            EXIT_USAGE,
            f"{prog} set: error: {len(extra)} argument(s) more than KEY [VALUE] [--ttl N] (not "
            "shown: they may be part of the value); quote a value with spaces, write one that "
            f"starts with '-' after `--` ({prog} set KEY -- -VALUE), or pass it on stdin\n",
        )
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "healthcheck":
        return _healthcheck(args.url)
    _configure_logging()
    if args.command == "serve":
        return _serve()
    from secure_cache.client import SecureCache  # noqa: PLC0415 - see the imports

    try:
        cache = SecureCache.from_env()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    with cache:
        return _COMMANDS[args.command](cache, args)


def _unavailable(what: str) -> int:
    from secure_cache.diagnose import explain_unavailable  # noqa: PLC0415 - see the imports
    from secure_cache.settings import Settings  # noqa: PLC0415

    # The settings were valid a moment ago (from_env), so reading them again cannot fail.
    print(f"{what}: {explain_unavailable(Settings.from_env())}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _refusals(cache: SecureCache) -> int:
    return cache.events.count("acl_denied") + cache.events.count("command_errors")


def _get(cache: SecureCache, args: argparse.Namespace) -> int:
    refused = _refusals(cache)
    value = cache.get(args.key)
    if cache.backend != "redis":
        return _unavailable("cannot read")
    if _refusals(cache) > refused:
        print("cannot read: redis refused the command (see the event line above)", file=sys.stderr)
        return EXIT_REFUSED
    if value is None:
        return EXIT_MISS
    try:
        sys.stdout.buffer.write(value)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head -c 10`: the reader has what it wanted
        reader_gone()
    return EXIT_OK


def _set(cache: SecureCache, args: argparse.Namespace) -> int:
    value = args.value.encode("utf-8", "surrogateescape") if args.value is not None else None
    if value is None:
        value = sys.stdin.buffer.read(MAX_STDIN_VALUE_BYTES + 1)
        if len(value) > MAX_STDIN_VALUE_BYTES:
            print(
                f"the value was not stored: stdin holds more than {MAX_STDIN_VALUE_BYTES} "
                "bytes, more than Redis stores in one value (proto-max-bulk-len); check what "
                "is redirected into `set` (< /dev/zero never ends)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not value:
            # `docker exec CONTAINER secure-cache set KEY < FILE` without -i gives the command
            # an empty stdin, not FILE: an empty value was stored and exit 0 said done. An empty
            # value is stored when it is asked for as such: an empty VALUE argument.
            print(
                "the value was not stored: stdin is empty; through docker exec, pass -i "
                f"(`docker exec -i CONTAINER {CONSOLE_PROG} set KEY < FILE`: without it the "
                "command gets no stdin); to store an empty value, give it: set KEY ''",
                file=sys.stderr,
            )
            return EXIT_USAGE
    refused = _refusals(cache)
    cache.set(args.key, value, args.ttl)
    if cache.backend != "redis":
        # A CLI process exits right away: a value kept only in its memory would be lost.
        return _unavailable("the value was not stored")
    if _refusals(cache) > refused:
        print(
            "the value was not stored: redis refused the write (ACL NOPERM or an error; see the "
            "event line above); check REDIS_KEY_PREFIX against the user's ACL key pattern",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    return EXIT_OK


def _delete(cache: SecureCache, args: argparse.Namespace) -> int:
    refused = _refusals(cache)
    removed = cache.delete(args.key)
    if cache.backend != "redis":
        return _unavailable("nothing was deleted")
    if _refusals(cache) > refused:
        print("nothing was deleted: redis refused the command", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK if removed else EXIT_MISS


def _status(cache: SecureCache, _args: argparse.Namespace) -> int:
    _print_json(cache.status())
    return EXIT_OK


def _rotate(cache: SecureCache, args: argparse.Namespace) -> int:
    from secure_cache.client import DEFAULT_ROTATION_BATCH  # noqa: PLC0415 - see the imports

    batch_size = args.batch_size or DEFAULT_ROTATION_BATCH
    try:
        report = cache.rotate(batch_size=batch_size, max_batches=args.max_batches)
    except BackendUnavailable:
        return _unavailable("rotation did not run")
    except CommandRejected as exc:
        # A deployed stack runs the pass as its own ACL user in its own container: the
        # serving app's user may not WATCH (infra/redis_acl.py ROTATION_COMMANDS). Entries
        # moved before the refusal stay moved; the pass is safe to run again.
        hint = (
            "; the pass needs the rotation ACL user (on a stack: scripts/rotate.sh STACK "
            "data-key, or docker start --attach secure-redis-STACK-rotation)"
            if exc.acl
            else "; run it again"
        )
        print(f"rotation did not run to the end: {exc}{hint}", file=sys.stderr)
        return EXIT_REFUSED
    _print_json(report.as_dict())
    if report.discarded:
        # Deleted, not moved: tampered with, or foreign. Said once here, beside the per-entry
        # warnings, so an operator does not read exit 0 as "every entry moved".
        n = report.discarded
        print(
            f"secure-cache: {n} {'entry' if n == 1 else 'entries'} no data key opens "
            f"{'was' if n == 1 else 'were'} deleted (event=integrity_failure above): tampered "
            "with or foreign (not an envelope of a newer secure-cache under a data key of "
            "this keyring: those are left in place)",
            file=sys.stderr,
        )
    if report.left_newer and not report.complete:
        # (Complete: they expired or were deleted before the pass's last SCAN; the old key
        # owns nothing any more.)
        return _left_newer(report.left_newer)
    return EXIT_OK if report.complete else EXIT_INCOMPLETE


def _left_newer(n: int) -> int:
    """The pass left entries a newer secure-cache wrote (core.RotationReport.left_newer): the
    previous key still owns them, so it must stay, and running this version again cannot move
    them. Its own exit code, so that scripts/rotate.sh neither retries nor retires the key."""
    from secure_cache.crypto import VERSION  # noqa: PLC0415 - see the imports

    print(
        f"secure-cache: rotation incomplete: {n} {'entry' if n == 1 else 'entries'} written "
        f"by a newer secure-cache (an envelope version above {VERSION}, the newest this "
        f"version reads) {'was' if n == 1 else 'were'} left on the old data key, not deleted "
        "(event=newer_envelope). The app was rolled back. Keep the old data key (retiring it "
        "loses them); upgrade the app again, then run the rotation again with the newer code "
        "(on a stack: an up from the newer checkout, then scripts/rotate.sh STACK data-key, "
        'which finishes this rotation). docs/day2.md, "Rolling back the app"',
        file=sys.stderr,
    )
    return EXIT_NEWER


def _print_json(payload: object) -> None:
    """Through `say`: a reader gone before `rotate`'s report leaves its exit status (3, 7) as
    the pass made it, not 0."""
    say(json.dumps(payload, indent=2, sort_keys=True))


_COMMANDS: Final[dict[str, Callable[[SecureCache, argparse.Namespace], int]]] = {
    "get": _get,
    "set": _set,
    "delete": _delete,
    "status": _status,
    "rotate": _rotate,
}


def run() -> int:
    """main() for the console: a reader that goes away (`| head -1`) ends it quietly."""
    # The installed console script (app/pyproject.toml) is named in its own usage lines;
    # `python -m secure_cache` is named as such.
    started = Path(sys.argv[0]).name
    try:
        return main(prog=CONSOLE_PROG if started == CONSOLE_PROG else MODULE_PROG)
    except BrokenPipeError:  # anything printed not through `say` (argparse's --help)
        reader_gone()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run())
