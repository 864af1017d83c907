# redis-py's connection classes are unannotated; their calls are checked by these tests.
# mypy: disable-error-code="no-untyped-call"
"""The command table of a real redis-server, and the argv that asks it to run each command.

Used to prove the app's ACL refuses everything it does not allow: every command and
subcommand `COMMAND DOCS` names, sent with a valid number of arguments (Redis checks arity
before the ACL, so a short argv would be refused for the wrong reason) and with every
argument inside the app's key prefix (so a refusal is about the command, not a key).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from tests.support.tls_redis import REDIS_SERVER, RedisServerError, free_port

Send = Callable[..., Any]
"""Sends one command on a raw connection and returns its reply (no redis-py callbacks)."""

# Redis skips the ACL's command check for commands flagged `no_auth` (AUTH, HELLO, QUIT,
# RESET in 7.0): they only change the connection's own state. The tests read the flag from
# the server and check the set stays this small.
CONNECTION_ONLY = frozenset({"auth", "hello", "quit", "reset"})
# Refused by `enable-debug-command no` / `enable-module-command no` (infra/redis_conf.py)
# before the ACL is consulted; ACL DRYRUN proves the ACL refuses them too.
REFUSED_BY_CONFIG = ("DEBUG command not allowed", "MODULE command not allowed")
COMMAND_REFUSED = "no permissions to run the"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    """Lower case; a subcommand as `parent|sub`."""
    arity: int
    flags: frozenset[str]
    container: bool
    """Has subcommands: only they are commands a client can run."""

    def argv(self, filler: str) -> list[str]:
        """The shortest argv Redis accepts for this command's arity, `filler` everywhere."""
        words = self.name.split("|")
        needed = abs(self.arity)
        return words + [filler] * max(0, needed - len(words))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def command_table(send: Send) -> dict[str, CommandSpec]:
    """Every command and subcommand from `COMMAND`, by name."""
    table: dict[str, CommandSpec] = {}

    def walk(entries: Sequence[Any]) -> None:
        for entry in entries:
            subcommands = entry[9] if len(entry) > 9 else []
            name = _text(entry[0]).lower()
            table[name] = CommandSpec(
                name=name,
                arity=int(entry[1]),
                flags=frozenset(_text(flag) for flag in entry[2]),
                container=bool(subcommands),
            )
            walk(subcommands)

    walk(send("COMMAND"))
    return table


def documented_names(send: Send) -> set[str]:
    """Every command and subcommand `COMMAND DOCS` names."""
    docs = send("COMMAND", "DOCS")
    names: set[str] = set()
    for name, doc in zip(docs[::2], docs[1::2], strict=True):
        names.add(_text(name).lower())
        fields = dict(zip(map(_text, doc[::2]), doc[1::2], strict=True))
        subcommands = fields.get("subcommands", [])
        names |= {_text(sub).lower() for sub in subcommands[::2]}
    return names


def runnable(send: Send) -> list[CommandSpec]:
    """The commands a client can run (containers excluded), each in COMMAND DOCS."""
    table = command_table(send)
    names = documented_names(send)
    missing = names - set(table)
    if missing:
        raise AssertionError(f"COMMAND DOCS names commands COMMAND does not know: {missing}")
    return [table[name] for name in sorted(names) if not table[name].container]


def raw_sender(connection: redis.Connection) -> Send:
    def send(*args: Any) -> Any:
        connection.send_command(*args)
        return connection.read_response()

    return send


@contextlib.contextmanager
def local_catalog_server() -> Iterator[Send]:
    """A throwaway plaintext redis-server on loopback (no persistence) to ask for its
    command table; the e2e tests use it because the deployed app user may not ask."""
    if shutil.which(REDIS_SERVER) is None:
        raise RedisServerError("redis-server not found; run scripts/bootstrap.sh")
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--databases", "1", "--logfile", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    connection = redis.Connection(host="127.0.0.1", port=port, protocol=2, socket_timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                connection.connect()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield raw_sender(connection)
    finally:
        connection.disconnect()
        process.kill()
        process.wait(timeout=10)


__all__ = [
    "COMMAND_REFUSED",
    "CONNECTION_ONLY",
    "REFUSED_BY_CONFIG",
    "CommandSpec",
    "Send",
    "command_table",
    "documented_names",
    "local_catalog_server",
    "raw_sender",
    "runnable",
]
