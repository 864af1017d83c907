"""Network probes that run INSIDE a container: `python3 -c <this file> '<json request>'`.

Standard library only (the app image's interpreter runs it). Prints one JSON object. Secrets
are referenced as `{"file": path}` and read here, inside the container, so they never appear on
an argv, in a log or in the JSON that goes back to the test. Replies are Redis' first reply
lines (`+OK`, `-NOPERM ...`); commands are never echoed.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

Command = list[Any]


def _arg(value: Any, bodies: list[bytes | None]) -> bytes:
    if isinstance(value, dict) and "reply" in value:
        # The exact bytes of an earlier bulk reply of this session (an attacker's GET, SET).
        body = bodies[int(value["reply"])]
        if body is None:
            raise ValueError(f"reply {value['reply']} was not a bulk string")
        return body
    if isinstance(value, dict):
        with open(value["file"], "rb") as handle:
            return handle.read().strip()
    return str(value).encode()


def _encode(command: Command, bodies: list[bytes | None] | None = None) -> bytes:
    parts = [_arg(v, bodies or []) for v in command]
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _reply(reader: Any, bodies: list[bytes | None] | None = None) -> str:
    """The reply's first line (and a bulk string's start), as text; a bulk string's exact
    bytes are appended to `bodies` (None for any other reply)."""
    line: bytes = reader.readline()
    if not line:
        return "<eof>"
    text = line.decode("latin-1").rstrip("\r\n")
    if text.startswith("$") and int(text[1:]) >= 0:
        body = reader.read(int(text[1:]) + 2)[:-2]
        if bodies is not None:
            bodies.append(body)
        return f"{text} {body.decode('latin-1')}"[:300]
    if bodies is not None:
        bodies.append(None)
    if text.startswith("*") and int(text[1:]) > 0:
        # Each item is capped on its own; the list is not, so a SCAN of a busy stack stays whole.
        items = [_reply(reader) for _ in range(int(text[1:]))]
        return f"{text} {' | '.join(items)}"
    return text[:300]


def plaintext(host: str, port: int, timeout: float = 3.0) -> dict[str, Any]:
    """Speak RESP without TLS: what does the server send back to PING, and does it close?

    Reads until the server closes (EOF or reset: `closed`) or `timeout` passes without a byte
    (`closed` false). `reply`: whatever came back before that (at most 256 bytes, as latin-1).
    """
    try:
        conn = socket.create_connection((host, port), timeout)
    except OSError as exc:
        return {
            "connected": False,
            "closed": None,
            "reply": None,
            "error": f"{type(exc).__name__}: {exc}",
        }
    data, closed, error = b"", False, None
    with conn:
        conn.sendall(_encode(["PING"]))
        while len(data) < 256:
            try:
                chunk = conn.recv(256)
            except TimeoutError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            except OSError as exc:  # reset: the server dropped the connection
                closed, error = True, f"{type(exc).__name__}: {exc}"
                break
            if not chunk:
                closed = True
                break
            data += chunk
    return {"connected": True, "closed": closed, "reply": data.decode("latin-1"), "error": error}


def tls(
    host: str,
    port: int,
    server_name: str,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    cert_pem: str | None = None,
    key_pem: str | None = None,
    min_version: str | None = None,
    max_version: str | None = None,
    seclevel0: bool = False,
    ciphers: str | None = None,
    commands: list[Command] | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """A TLS session: handshake as configured, then each command's first reply line."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if seclevel0 or ciphers:
        # SECLEVEL=0: a refused old protocol or cipher is the server's refusal, not this client's.
        ctx.set_ciphers(f"{ciphers or 'DEFAULT'}:@SECLEVEL=0")
    if min_version:
        ctx.minimum_version = getattr(ssl.TLSVersion, min_version)
    if max_version:
        ctx.maximum_version = getattr(ssl.TLSVersion, max_version)
    result: dict[str, Any] = {"handshake": False, "version": None, "error": None, "replies": []}
    with tempfile.TemporaryDirectory() as scratch:
        if cert_pem and key_pem:
            cert, key = os.path.join(scratch, "c.pem"), os.path.join(scratch, "k.pem")
            for path, text in ((cert, cert_pem), (key, key_pem)):
                with open(path, "w") as handle:
                    handle.write(text)
        if cert:
            ctx.load_cert_chain(cert, key)
        try:
            raw = socket.create_connection((host, port), timeout)
        except OSError as exc:
            result["error"] = f"connect: {type(exc).__name__}: {exc}"
            return result
        try:
            with ctx.wrap_socket(raw, server_hostname=server_name) as conn:
                result["handshake"] = True
                result["version"] = conn.version()
                result["cipher"] = (conn.cipher() or ("",))[0]
                peer = conn.getpeercert(binary_form=True)  # public: the server's certificate
                result["peer_cert"] = base64.b64encode(peer).decode() if peer else None
                reader = conn.makefile("rb")
                bodies: list[bytes | None] = []
                for command in commands or []:
                    conn.sendall(_encode(command, bodies))
                    result["replies"].append(_reply(reader, bodies))
        except (ssl.SSLError, OSError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def resolve(name: str) -> dict[str, Any]:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return {"addresses": [], "error": str(exc)}
    return {"addresses": sorted({str(info[4][0]) for info in infos})}


def connect(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    try:
        with socket.create_connection((host, port), timeout):
            return {"connected": True}
    except OSError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}


def hold_connections(host: str, port: int, count: int, seconds: float) -> dict[str, Any]:
    """Open up to `count` TCP connections that never send a byte (slowloris), hold them for
    `seconds`, and count how many the server had closed by then."""
    held: list[socket.socket] = []
    for _ in range(count):
        try:
            held.append(socket.create_connection((host, port), 2.0))
        except OSError:
            break
    time.sleep(seconds)
    closed = 0
    for sock in held:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""
        except BlockingIOError:
            pass  # still open, nothing sent
        except OSError:
            closed += 1
        sock.close()
    return {"opened": len(held), "closed_by_server": closed}


def file_facts(paths: list[str]) -> dict[str, Any]:
    """Length and character class of secret files, never their content."""
    facts = {}
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        facts[path] = {"length": len(data.strip()), "alnum": data.strip().isalnum()}
    return facts


ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "plaintext": plaintext,
    "tls": tls,
    "resolve": resolve,
    "connect": connect,
    "hold_connections": hold_connections,
    "file_facts": file_facts,
}


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    action = ACTIONS[request.pop("action")]
    print(json.dumps(action(**request)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
