"""The service's start and stop, the app's own parts of a replacement's outage.

An app replacement's outage lasts from the old app's stop until the new app's port accepts
(docs/day2.md, "A replaced container keeps running until its successor is due").

Start: `serve` binds its sockets before it
imports the server's modules (app/secure_cache/listen.py), so a connection that arrives
meanwhile waits in the backlog and gets its answer once the server runs. The test connects at
the moment the service first imports one of the libraries it needs only once it listens (or,
urllib.request, not at all): before the fix the command line imported urllib.request, and
`serve` uvicorn and the client, before the port was bound, and the connection was refused.

Stop: the successor is created only once the old process has exited, and the interpreter's
exit ran full collections over every object the service's imports made (0.5-0.8 s on the
loaded 2-core machine). `serve` freezes them once it has stopped (app/secure_cache/__main__.py).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from tests.support.service_process import service_environ, serving
from tests.support.tls_redis import TlsRedisServer, free_port

TOKEN = "S" * 40  # checkov:skip=CKV_SECRET_6: a test token, not a credential
# Bounds only: the early reply is written as soon as the service serves (a few seconds when
# both cores are busy); the test waits for it, it does not time it.
_REPLY_WAIT_S = 60.0
_REPLY_POLL_S = 0.1

# Run in the service's process before `python -m secure_cache serve` itself: the first import
# of any of these opens a connection to the service's port and sends /healthz on it, and a
# thread writes the first line of what comes back (or why the connection failed) to
# EARLY_REPLY. The settings' own libraries (cryptography, ssl) are imported before the bind:
# the configuration is checked before the service listens (app/secure_cache/__main__.py).
_AFTER_THE_BIND = ("urllib.request", "uvicorn", "uvloop", "redis", "prometheus_client")
_EARLY_CLIENT = """
import importlib.abc, os, socket, sys, threading

REQUEST = b"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n"

class EarlyClient(importlib.abc.MetaPathFinder):
    fired = False

    def find_spec(self, name, path=None, target=None):
        if name in AFTER_THE_BIND and not EarlyClient.fired:
            EarlyClient.fired = True
            connect(name)
        return None

def write(text):
    with open(os.environ["EARLY_REPLY"], "w") as out:
        out.write(text)

def connect(name):
    try:
        port = int(os.environ["HTTP_PORT"])
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(REQUEST)
    except OSError as exc:
        write(f"no connection at the import of {name}: {type(exc).__name__}: {exc}")
        return

    def read():
        try:
            reply = sock.makefile("rb").readline()
            write(reply.decode(errors="replace").strip() or "closed without an answer")
        except OSError as exc:
            write(f"no answer: {type(exc).__name__}: {exc}")

    threading.Thread(target=read, daemon=True).start()

sys.meta_path.insert(0, EarlyClient())
from secure_cache.__main__ import main
sys.exit(main(["serve"]))
""".replace("AFTER_THE_BIND", repr(_AFTER_THE_BIND))


def _early_reply(path: Path) -> str:
    deadline = time.monotonic() + _REPLY_WAIT_S
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the early connection got no answer"
        time.sleep(_REPLY_POLL_S)
    return path.read_text()


def test_start__a_connection_made_while_the_server_imports_is_answered(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    port = free_port()
    reply = tmp_path / "early-reply"
    env = service_environ(tls_redis, tmp_path / "secrets", port, TOKEN, EARLY_REPLY=str(reply))
    log = tmp_path / "service.log"
    argv = [sys.executable, "-c", _EARLY_CLIENT]
    with serving(env, port, log, argv=argv):
        answer = _early_reply(reply)
    assert answer == "HTTP/1.1 200 OK", f"{answer}\n{log.read_text(errors='replace')}"


# Run in the service's process: registered before the service's own exit handlers, this one
# runs after them, as the interpreter's exit begins, and writes how many objects the
# collector would still traverse and how many are frozen (skipped by its collections).
_EXIT_COUNTS = """
import atexit, gc, sys

def counts():
    print(f"exit: tracked={len(gc.get_objects())} frozen={gc.get_freeze_count()}", file=sys.stderr)

atexit.register(counts)
from secure_cache.__main__ import main
sys.exit(main(["serve"]))
"""


def test_stop__the_exit_after_a_sigterm_leaves_the_collector_nothing_to_traverse(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    port = free_port()
    env = service_environ(tls_redis, tmp_path / "secrets", port, TOKEN)
    log = tmp_path / "service.log"
    with serving(env, port, log, argv=[sys.executable, "-c", _EXIT_COUNTS]) as process:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    text = log.read_text(errors="replace")
    assert "event=service_stopped" in text
    line = next((x for x in text.splitlines() if x.startswith("exit: ")), "")
    counts = dict(pair.split("=") for pair in line.removeprefix("exit: ").split())
    assert counts, text
    # Frozen: every object the service made. Tracked: what the exit itself made since.
    assert int(counts["frozen"]) > 10 * int(counts["tracked"]), line
