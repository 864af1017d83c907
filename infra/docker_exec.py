"""`docker exec` through docker-py without losing the start of the output.

docker-py's `Container.exec_run` (docker 7.2.0, the pinned version) sends `POST /exec/ID/start`
with `Upgrade: tcp`, lets http.client read the `101 UPGRADED` response's headers through a
buffered reader, then reads the output from the raw socket under that reader
(`APIClient._get_raw_response_socket`: `response.raw._fp.fp.raw`). Whatever the buffered reader
took in past the headers is skipped: when the command has run and written before the client gets
to read the headers (a loaded machine: the engine answers, runs a `cat` and writes its output
while the client waits for a CPU), the output, or its start, arrives in the same read as the
headers and is lost. exec_run then returns exit code 0 with an empty or short output; frames
read past a lost frame header come back as garbage or nothing. This is docker/docker-py#2042 and
#3332 (docker-py had once fixed it for attach, #1788, with an unbuffered reader; 7.x no longer
has that code). An empty `app.crt` read this way failed
tests/e2e/test_e2e_applier_incremental.py with `MalformedFraming` at a load average of 17, and
the same loss made the rotation probe read Redis's files as "expected 3 files, read 0".

`exec_run` below reads the stream through that buffered reader instead, so the bytes it already
holds are read first (tests/unit/test_docker_exec.py serves headers and output in one write).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import requests
from docker.errors import create_api_error_from_http_exception

# Each frame of a non-TTY exec's stream: stream id (1 stdout, 2 stderr), three zero bytes, then
# the payload's length, big-endian (the Engine API's "Attach to a container" stream format).
_FRAME_HEADER = struct.Struct(">BxxxL")
# The engine ends an exec's stream when the command's output pipe closes, and records its exit
# code when the process's exit event reaches it (moby's daemon ProcessEvent), which may be
# later: an inspect in between answers Running with ExitCode null. It is asked again, up to
# _INSPECT_TRIES times _INSPECT_PAUSE_S (5 s) in all.
_INSPECT_TRIES = 50
_INSPECT_PAUSE_S = 0.1


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ExecResult(NamedTuple):
    exit_code: int | None
    output: bytes


def exec_run(container: Any, argv: Sequence[str], *, user: str = "") -> ExecResult:
    """`argv` run in `container` (a docker-py Container), as `Container.exec_run(argv)` with its
    defaults (stdout and stderr together, no TTY), with every byte the command wrote."""
    api = container.client.api
    created = api.exec_create(container.id, list(argv), stdout=True, stderr=True, user=user)
    exec_id = created["Id"]
    # The request exactly as docker-py's exec_start sends it (its own helpers: the URL with the
    # API version, the JSON body, the client's timeout while waiting for the headers).
    response = api._post_json(
        api._url("/exec/{0}/start", exec_id),
        headers={"Connection": "Upgrade", "Upgrade": "tcp"},
        data={"Tty": False, "Detach": False},
        stream=True,
    )
    try:
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            raise create_api_error_from_http_exception(exc) from exc
        # http.client's reader of the response: it holds what came in with the headers.
        reader = response.raw._fp.fp
        _stream_without_timeout(reader)
        output = read_frames(reader)
    finally:
        response.close()
    return ExecResult(_exit_code(api, exec_id), output)


def _exit_code(api: Any, exec_id: str) -> int | None:
    """The exec's exit code once the engine has recorded it; None if it has not within the
    bounded wait (a caller takes that for a failure, as docker-py's exec_run's None was)."""
    code = None
    for attempt in range(_INSPECT_TRIES):
        if attempt:
            time.sleep(_INSPECT_PAUSE_S)
        code = api.exec_inspect(exec_id)["ExitCode"]
        if code is not None:
            return int(code)
    return code


def read_frames(reader: _Reader) -> bytes:
    """The payloads of a multiplexed exec stream, stdout and stderr in the order written, up
    to the end of the stream (a frame cut short ends it: what was read is returned)."""
    chunks = []
    while len(header := _read_exactly(reader, _FRAME_HEADER.size)) == _FRAME_HEADER.size:
        _stream, length = _FRAME_HEADER.unpack(header)
        payload = _read_exactly(reader, length)
        chunks.append(payload)
        if len(payload) < length:
            break
    return b"".join(chunks)


def _read_exactly(reader: _Reader, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = reader.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _stream_without_timeout(reader: object) -> None:
    """No read timeout while the command runs, as docker-py's exec_run waits (its read polls
    with none): a slow command is not cut off by the client's request timeout."""
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(None)


__all__ = ["ExecResult", "exec_run", "read_frames"]
