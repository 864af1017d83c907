"""`python -m infra.rotation_probe (snapshot|wait|report|unfinished|guard|rewrite-aof)`: what a
running stack's consumers use, and which rotation it shows half done.

`rewrite-aof` has Redis rewrite its append-only file (the exporter's `rewrite-aof`, by `docker
exec`: its ACL identity may run BGREWRITEAOF, infra/redis_acl.py), then checks that Redis's
data directory holds nothing older than that rewrite (infra/aof_files.py): what
scripts/rotate.sh runs last in a data-key rotation, so that no envelope of the retired key
stays on disk (docs/day2.md, "What a retirement leaves"). Exit 0 done, 1 the rewrite failed
or older files are left (each named, with what to do), 3 as below.

scripts/rotate.sh takes a snapshot before a rotation, waits after each `up` until every
consumer uses the new material, and reports what changed. Everything is observed from the
consumers' side, through `docker exec` into the running containers (the certificate Redis
serves also from a short-lived copy of the app when the app is not running: Probe._served):
- the certificate Redis presents to a new TLS connection (a handshake from inside the app
  container, with the app's own CA bundle and client certificate), beside the one in Redis's
  material volume: equal once Redis reloaded;
- the CAs each volume trusts, the app's client certificate, the ACL's password hashes per user
  and the hash of the app's password file (the `#<sha256>` form, which the ACL file holds too
  and which reveals nothing; never a password);
- the app's /security-status (data-key ids, the material-reload counter where the app has it),
  asked with the token in the app's api.token: the app must accept the token it hands out;
- the API token in the app's volume and how many earlier tokens it still accepts beside it
  (a fingerprint of the token's SHA-256 and a count; never a token);
- each container's ID and start time: a rotation must not restart Redis or the app.
Nothing secret is printed: certificates are public, hashes are fingerprinted once more.
Exit codes (README's table): 0 done (a consumer restarted by someone else is named, not
failed), 1 not settled in time / expected change missing, 2 unusable input, 3 the stack cannot
be observed (a container missing or not running, the Docker engine not answering), its line
ending with the way on for that cause (way_on).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO, TypeVar

from infra.aof_files import AOF_DIR, DATA_DIR, MANIFEST, ManifestError, base_file, left_behind
from infra.cli import OneLineParser, exit_with, printable, say
from infra.naming import (
    APP_HTTP_PORT,
    EXPORTER_CONTAINER,
    REDIS_ALIAS,
    ROLE_LABEL,
    STACK_LABEL,
    Role,
    label_pairs,
    object_name,
)
from infra.redis_acl import APP_USER
from infra.settings import REPO_ROOT, SettingsError, load_settings, load_stack_file, quoted

if TYPE_CHECKING:
    from infra.applier.state import StackState

REDIS_DIR: Final = "/etc/secure-redis"
APP_DIR: Final = "/etc/secure-cache"
# Redis presents another certificate than its volume holds (its TLS reload has not taken, or
# the volume was written again); _wait prints the serials and the reload's evidence for it.
NOT_SERVED: Final = "Redis does not serve the certificate in its volume yet"
# What _wait says after a consumer restarted by someone else when the step took nonetheless.
RESTART_TOOK: Final = (
    "it read its files at start and every consumer uses the new material, so this step took"
)
KINDS: Final = ("certs", "passwords", "data-key", "ca", "api-token", "api-token-retire", "all")
# Each observation is a `docker exec`, and an exec costs tens of milliseconds of the engine's
# and runc's time (a python3 start in the container on top): so the probe runs one script per
# container per snapshot, not one per fact. Eleven execs a snapshot, 17 a wait round, had made
# `rotate.sh S certs` take 62 s on a loaded 2-core machine, 40 of it in the probe.
#
# A function that makes a new TLS connection (a fresh process: no session to resume) and
# returns the certificate the server presents, as PEM; the client presents the material of
# directory `d` (ca.crt, app.crt, app.key). Its serial is read here by cert_serial, as the
# volume's is: getpeercert()["serialNumber"] writes every byte as two hex digits, so a serial
# whose first byte is below 0x10 (about one random serial in eight) read "0ABC..." beside the
# volume's "ABC..." and rotate.sh waited for a reload that had taken
# (tests/integration/test_redis_rotation.py).
_SERVED: Final = """
import socket, ssl
def served(host, port, d):
    ctx = ssl.create_default_context(cafile=d + "/ca.crt")
    ctx.load_cert_chain(d + "/app.crt", d + "/app.key")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
"""
# The certificate Redis presents, alone (PEM); argv: Redis's host and port, the app's material
# directory. What the local applier asks before an up that drops a CA (retire_refusal).
SERVED_ONLY: Final = _SERVED + "\nimport sys\nprint(served(*sys.argv[1:4]))\n"
# The short-lived container that runs SERVED_ONLY as the app, when the app container is stopped
# (Probe._served): secure-redis-<stack>-served-probe.
SERVED_PROBE: Final = "served-probe"
# The API wants the stack's bearer token (app/secure_cache/service.py); it is read from the
# app's own material volume inside the container and never leaves it.
_HTTP: Final = """
import urllib.request
def http(base, d, method, path, body=None):
    token = open(d + "/api.token").read().strip()
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": "Bearer " + token})
    return urllib.request.urlopen(req, timeout=10).read().decode()
"""
# What the app uses, printed as one JSON object; argv: its material directory, Redis's host
# and port, the API's base URL. Hashes stand for secrets (the SHA-256 of the API token, the
# ACL `#<sha256>` form of the password file; earlier tokens only counted, as
# app/secure_cache/settings.py splits them); nothing secret is printed.
APP_FACTS: Final = (
    _SERVED
    + _HTTP
    + """
import hashlib, json, os, sys
d, host, port, base = sys.argv[1:5]
def read(name):
    with open(os.path.join(d, name)) as f:
        return f.read()
def sha256(text):
    return hashlib.sha256(text.strip().encode()).hexdigest()
step = "the app's API answering GET /security-status"
try:
    status = json.loads(http(base, d, "GET", "/security-status"))
    step = "the app's material files"
    facts = {
        "ca": read("ca.crt"), "cert": read("app.crt"), "status": status,
        "token_sha256": sha256(read("api.token")),
        "previous_tokens": len(set(read("api.previous-tokens").split())),
        "password_sha256": sha256(read("redis.password")),
        "material": os.readlink(os.path.join(d, "..data")),
    }
    step = "a new TLS connection from the app to Redis"
    facts["served"] = served(host, port, d)
except Exception as exc:
    sys.exit(f"{step} failed: {type(exc).__name__}: {exc}")
print(json.dumps(facts))
"""
)
# A write, a read and a delete through the API; prints whether the read gave what was written.
# argv: the API's base URL, the material directory, a key path and a value.
ROUND_TRIP: Final = (
    _HTTP
    + """
import sys
base, d, path, value = sys.argv[1:5]
http(base, d, "PUT", path, value.encode())
read = http(base, d, "GET", path).strip()
http(base, d, "DELETE", path)
print("same" if read == value else "different")
"""
)
# Several files of a container in one exec, each followed by a NUL (no text file holds one).
_CAT_EACH: Final = 'for f in "$@"; do cat -- "$f" || exit 1; printf "\\000"; done'
APP_API: Final = f"http://127.0.0.1:{APP_HTTP_PORT}"
# How many times a look reads an exec's output that came back short (Probe._read).
_READ_TRIES: Final = 3
_T = TypeVar("_T")
# Redis's files a snapshot reads, in the order snapshot_of takes them.
REDIS_FILES: Final = (f"{REDIS_DIR}/ca.crt", f"{REDIS_DIR}/server.crt", f"{REDIS_DIR}/users.acl")


class ProbeError(RuntimeError):
    """The stack cannot be observed (not running, a probe failed). `main` adds the way on that
    fits its cause (`way_on`) to one without its own (`Stated`)."""


class Stated(ProbeError):
    """A ProbeError whose message already says the way on (a container stopped or paused, the
    engine away): `way_on` adds nothing to it."""


class Missing(ProbeError):
    """A container of the stack does not exist: the stack is not deployed, or an up that
    would make it again did not finish."""


class NotTrusted(Stated):
    """A container holding the name of the stack's Redis, app or probe is not the stack's own
    (its labels, or the image the stack's state records for it): it was neither asked nor
    removed. The message is the whole refusal, with the way on. Not a passing state: _wait
    does not look again."""


# The roles whose containers a snapshot asks (Probe.snapshot), with the local applier's state.
SNAPSHOT_ROLES: Final = (Role.REDIS, Role.APP)
# The roles whose containers the probe runs anything in, each to its container's suffix: the
# snapshot's, and the exporter, which `rewrite-aof` has send BGREWRITEAOF.
TRUSTED_ROLES: Final = {Role.REDIS: "redis", Role.APP: "app", Role.EXPORTER: EXPORTER_CONTAINER}


@dataclass(frozen=True)
class Recorded:
    """What the local applier's state records for the stack's Redis, app and exporter
    containers (TRUSTED_ROLES)."""

    images: Mapping[Role, str | None]
    """Image IDs (None for a container it records none of: an up interrupted before it made
    it, `recorded_image`)."""
    containers: Mapping[Role, str | None]
    """Container IDs (None likewise, `recorded_container`): the one container the applier
    made last for the role; any other holding its name, of the same image and labels, is a
    look-alike."""

    @classmethod
    def of(cls, state: StackState | None, stack: str) -> Recorded:
        """What the local applier's `state` of `stack` records for its Redis and app (None:
        no state, nothing recorded)."""
        from infra.applier.state import recorded_container, recorded_image  # noqa: PLC0415

        names = {role: object_name(stack, suffix) for role, suffix in TRUSTED_ROLES.items()}
        return cls(
            images={role: recorded_image(state, name) for role, name in names.items()},
            containers={role: recorded_container(state, name) for role, name in names.items()},
        )


def recorded_state(stack: str, project_dir: Path = REPO_ROOT) -> Recorded | None:
    """What the local applier's state records for the stack's Redis and app, or None when
    the stack has no such state. Read-only and without the lock: the state is replaced by a
    rename, never written in place, so this is the state as it is now. A state that does not
    open (the passphrase or key file) is a ValueError: bad input, exit 2, as for
    `infra.apply up`."""
    from infra.applier.state import StateError, StateStore  # noqa: PLC0415

    try:
        state = StateStore(project_dir, stack).load()
    except StateError as exc:
        raise ValueError(str(exc)) from None
    return None if state is None else Recorded.of(state, stack)


# The exit code of `snapshot` while an up of the stack runs (applier_busy).
BUSY: Final = 4


def applier_busy(stack: str, project_dir: Path = REPO_ROOT) -> str | None:
    """Why rotate.sh must not start a step now, or None: an `up` (or `down`, `rekey`) of the
    stack is running. Its containers are being replaced under the probe's eyes (found on s90,
    2026-12-03: rotate.sh during an `up` raised the setting, then its probe met the app that
    up had just removed and printed Docker's bare 404 with the container's ID, and the step's
    own `up` would have been refused by the lock)."""
    from infra.applier.state import StateStore  # noqa: PLC0415

    return StateStore(project_dir, stack).busy(f"scripts/rotate.sh {stack}")


def _short_id(image_id: str) -> str:
    """An image ID as `docker images` shows it (12 hex digits)."""
    return image_id.removeprefix("sha256:")[:12] or "(none)"


def fingerprint(value: str) -> str:
    """A short, one-way name for a (non-secret) hash, for display and comparison."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def acl_fingerprints(acl: str) -> dict[str, list[str]]:
    """User -> fingerprints of the password hashes the ACL file lets it use."""
    users: dict[str, list[str]] = {}
    for line in acl.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] == "user":
            users[words[1]] = [fingerprint(w[1:]) for w in words[2:] if w.startswith("#")]
    return users


# infra/pki.py (and with it `cryptography`, about 0.1 s per start) is imported by the functions
# that read certificates, not by the module: scripts/rotate.sh runs `unfinished`, which reads
# only a snapshot's JSON, several times per rotation.


def bundle_serials(pem: str) -> list[str]:
    from infra import pki  # noqa: PLC0415 - see above

    return [f"{c.serial_number:X}" for c in pki.split_bundle(pem.encode())]


def cert_serial(pem: str) -> str:
    from infra import pki  # noqa: PLC0415 - see above

    return f"{pki.load_certificate(pem.encode()).serial_number:X}"


def served_pem(where: str, printed: str) -> str:
    """The one certificate SERVED_ONLY printed, or a ProbeError naming `where` when the output
    holds no whole one (an exec whose output came back empty or cut short). Read as
    it was, issuer_serial raised PkiError ("not a PEM-encoded X.509 certificate") out of
    served_issuer, and the `up` of a CA's retire step ended at exit 3, "an error the applier
    does not handle"."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    text = printed.strip()
    if not (text.startswith(begin) and text.endswith(end) and text.count(begin) == 1):
        shown = printable(text[-300:]) or "nothing"
        raise ProbeError(f"{where}: expected the certificate Redis serves, read {shown}")
    return text + "\n"


def served_serial(printed: str) -> str:
    """The serial of the certificate APP_FACTS's `served` gave, in the form cert_serial gives
    the volume's."""
    return cert_serial(printed)


def issuer_serial(cert_pem: str, bundle_pem: str) -> str | None:
    """The serial of the bundle's CA that signed `cert_pem`."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - as pki above

    from infra import pki  # noqa: PLC0415

    for ca in pki.split_bundle(bundle_pem.encode()):
        ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        if pki.verify_chain(cert_pem.encode(), ca_pem):
            return f"{ca.serial_number:X}"
    return None


def files_command(paths: Sequence[str]) -> list[str]:
    """argv that prints each file of `paths` in turn, each followed by a NUL."""
    return ["sh", "-c", _CAT_EACH, "sh", *paths]


def split_files(where: str, printed: str, count: int) -> list[str]:
    """The `count` files files_command printed, apart."""
    parts = printed.split("\0")
    if len(parts) != count + 1 or parts[-1]:
        raise ProbeError(f"{where}: expected {count} files, read {len(parts) - 1}")
    return parts[:-1]


# The argv of the two app-side scripts, built here only, so that the probe and the tests that
# run the scripts on this host (tests/integration/test_rotation_probe_scripts.py) pass the
# same arguments in the same order; `material` and `api` differ only there.
def app_facts_command(
    host: str, port: int, material: str = APP_DIR, api: str = APP_API
) -> list[str]:
    """argv that prints APP_FACTS's JSON; Redis at `host`:`port`, as the app reaches it."""
    return ["python3", "-c", APP_FACTS, material, host, str(port), api]


def served_command(host: str, port: int, material: str = APP_DIR) -> list[str]:
    """argv that prints the certificate Redis at `host`:`port` presents (SERVED_ONLY)."""
    return ["python3", "-c", SERVED_ONLY, host, str(port), material]


def round_trip_command(
    key: str, value: str, material: str = APP_DIR, api: str = APP_API
) -> list[str]:
    """argv that writes, reads back and deletes `key` through the API (ROUND_TRIP)."""
    return ["python3", "-c", ROUND_TRIP, api, material, key, value]


def read_app_facts(where: str, printed: str) -> dict[str, Any]:
    """APP_FACTS's output, or a ProbeError naming `where`."""
    try:
        facts = json.loads(printed)
    except ValueError as exc:
        raise ProbeError(f"{where}: unreadable facts: {printed.strip()[-300:]}") from exc
    if not isinstance(facts, dict):
        raise ProbeError(f"{where}: unreadable facts: not one JSON object")
    return facts


def snapshot_of(
    containers: dict[str, dict[str, str]], redis_files: Sequence[str], app: dict[str, Any]
) -> dict[str, Any]:
    """The snapshot, from the containers' identities, Redis's ca.crt, server.crt and users.acl
    (REDIS_FILES, in that order) and the app's facts (APP_FACTS)."""
    redis_ca, server, acl = redis_files
    status = app["status"]
    encryption = status.get("encryption", {})
    return {
        "containers": containers,
        "served_serial": served_serial(app["served"]),
        "served_issuer": issuer_serial(app["served"], redis_ca),
        "server_serial": cert_serial(server),
        "server_issuer": issuer_serial(server, redis_ca),
        "app_cert_serial": cert_serial(app["cert"]),
        "app_cert_issuer": issuer_serial(app["cert"], redis_ca),
        "redis_trusts": bundle_serials(redis_ca),
        "app_trusts": bundle_serials(app["ca"]),
        "acl": acl_fingerprints(acl),
        "app_password": fingerprint(app["password_sha256"]),
        "app_material": app["material"],
        "api_token": fingerprint(app["token_sha256"]),
        "api_previous_tokens": int(app["previous_tokens"]),
        "app_backend": status.get("backend"),
        "primary_key_id": encryption.get("primary_key_id"),
        "previous_key_ids": encryption.get("previous_key_ids", []),
        "material_reloads": status.get("counters", {}).get("material_reloads"),
    }


# Seconds the Docker client waits for one answer of the engine.
ENGINE_TIMEOUT_S: Final = 60.0


@contextmanager
def _observing(name: str) -> Iterator[None]:
    """The engine's errors while `name` is looked at, as a ProbeError naming it. OSError too:
    docker-py's transport errors (requests' ReadTimeout of a busy engine) are not
    DockerExceptions; as a ProbeError, _wait looks again instead of giving up."""
    from docker.errors import DockerException  # noqa: PLC0415 - the pure helpers need no Docker

    try:
        yield
    except (DockerException, OSError) as exc:
        raise ProbeError(f"{name}: {exc}") from exc


@contextmanager
def _looking_up(name: str) -> Iterator[None]:
    """`_observing` for looking up a container of the stack by name: its absence is Missing
    (the way on names the up that makes it again), not the engine's bare 404."""
    from docker.errors import NotFound  # noqa: PLC0415 - as in _observing

    try:
        with _observing(name):
            yield
    except ProbeError as exc:
        if isinstance(exc.__cause__, NotFound):
            raise Missing(f"{name} does not exist") from exc.__cause__
        raise


class Probe:
    def __init__(
        self,
        stack: str,
        port: int,
        engine_timeout: float = ENGINE_TIMEOUT_S,
        recorded: Recorded | None = None,
        reread: Callable[[], Recorded | None] | None = None,
    ) -> None:
        import docker  # noqa: PLC0415 - the pure helpers above need no Docker
        from docker.errors import DockerException  # noqa: PLC0415

        self.stack, self.port = stack, port
        try:
            self.client = docker.from_env(timeout=engine_timeout)
        except DockerException as exc:
            raise Stated(
                f"the Docker engine does not answer ({exc}); start dockerd or set DOCKER_HOST"
            ) from exc
        self.redis = object_name(stack, "redis")
        self.app = object_name(stack, "app")
        self.exporter = object_name(stack, EXPORTER_CONTAINER)
        self.served_timeout = engine_timeout
        # What snapshot() trusts: the containers labelled as this stack's Redis and app, and,
        # when the stack has a local applier's state (recorded_state), running the images it
        # records and, where it records one (not an unfinished record: that has no image and
        # is refused on that ground), only the very container it records: a look-alike can
        # copy the labels, the image, and the mounts `_beside` copies, not the ID. None: no
        # such state (a stack `pulumi up` deployed keeps its own), labels only.
        self.recorded = recorded
        # Reads the state again (recorded_state): an up replaces containers (a new ID each
        # time) and records the successor, so a container found to differ from what was read
        # before is judged by the state as it is at that moment, not by an older read.
        self.reread = reread

    def _exec(self, name: str, argv: list[str], target: str | None = None) -> str:
        """`argv`'s output in the container `target` (an ID), else the one named `name`."""
        # docker-py's own exec_run drops output that reaches it with the engine's response
        # headers (infra/docker_exec.py).
        from infra.docker_exec import exec_run  # noqa: PLC0415 - as docker in __init__

        with _observing(name):
            code, out = exec_run(self.client.containers.get(target or name), argv)
        text = out.decode(errors="replace")
        if code != 0:
            # The probes print no secret; the tail says what failed.
            shown = printable(text.strip()[-300:])
            raise ProbeError(f"{name}: {argv[0]} exited {code}: {shown}")
        return text

    def reload_evidence(self) -> list[str]:
        """What the Redis material writer and the TLS reload job last did (their times and the
        job's own last log line): printed when Redis keeps serving an older certificate, so
        the order of the two can be read off. Public content only (the job logs OK or the
        error reply)."""
        lines = []
        for name in (object_name(self.stack, "redis-init"), object_name(self.stack, "reload-tls")):
            try:
                with _observing(name):
                    container = self.client.containers.get(name)
                    state = container.attrs["State"]
                    tail = container.logs(tail=2).decode(errors="replace").strip()
            except ProbeError as exc:
                lines.append(f"{name}: not readable ({exc.__cause__})")
                continue
            tail = printable(tail.replace("\n", " | "))
            lines.append(
                f"{name}: started {state.get('StartedAt')}, finished {state.get('FinishedAt')}, "
                f"exit {state.get('ExitCode')}, log: {tail[-300:] or '(none)'}"
            )
        return lines

    def _files(self, name: str, paths: Sequence[str], target: str | None = None) -> list[str]:
        return self._read(
            name,
            files_command(paths),
            target,
            lambda printed: split_files(name, printed, len(paths)),
        )

    def _read(
        self, name: str, argv: list[str], target: str | None, parse: Callable[[str], _T]
    ) -> _T:
        """`parse` of `argv`'s output, the exec run again when that output is not whole.

        An exec's output came back empty or short now and then with exit 0: docker-py's
        exec_run dropped what reached it with the engine's response headers
        (docker/docker-py#2042; `_exec` now reads through infra/docker_exec.py,
        tests/unit/test_docker_exec.py). It failed rotate.sh s52 data-key between two of its
        ups (tests/unit/test_rotation_probe_lost_output.py). Every read is framed (Redis's
        files by NULs, the app's facts as one JSON object, the certificate Redis serves as one
        PEM block: `served_pem`), so a short read is still known and read again, whatever its
        cause. An exit other than 0 is not retried.
        """
        for attempt in range(1, _READ_TRIES + 1):
            printed = self._exec(name, argv, target)
            try:
                return parse(printed)
            except ProbeError:
                if attempt == _READ_TRIES:
                    raise
        raise AssertionError("unreachable")

    def snapshot(self) -> dict[str, Any]:
        """What the stack's Redis and app use now (snapshot_of). Only the stack's own are
        asked (`_trusted`), each by the ID that was checked, so that no container put in
        its place meanwhile answers: scripts/rotate.sh decides from this whether an up may
        retire a CA (`guard`) and whether a step took (`wait`, `report`)."""
        redis = self._running(self._trusted(self.redis, Role.REDIS))
        app = self._running(self._trusted(self.app, Role.APP))
        redis_files = self._files(self.redis, REDIS_FILES, redis["Id"])
        facts = self._read(
            self.app,
            app_facts_command(REDIS_ALIAS, self.port),
            app["Id"],
            lambda printed: read_app_facts(self.app, printed),
        )
        containers = {"redis": _identity(redis), "app": _identity(app)}
        return snapshot_of(containers, redis_files, facts)

    def _running(self, found: dict[str, Any]) -> dict[str, Any]:
        """`found` (the stack's own container, inspected) when it runs; else ProbeError with
        the way on. Before, the exec into it failed with Docker's bare `409 ... Conflict
        (Container <id> is not running)` under rotate.sh's "Not deployed" advice (found on
        s91, 2026-12-03: Redis stopped with `docker kill`, which its on-failure restart
        policy does not undo)."""
        state, name = found.get("State") or {}, str(found.get("Name", "")).lstrip("/")
        if state.get("Running") and not state.get("Paused"):
            return found
        if state.get("Paused"):
            return self._unusable(name, "is paused", f"`docker unpause {name}`")
        how = f"exited {state.get('ExitCode')} at {str(state.get('FinishedAt'))[:19]}"
        way = (
            f"`python -m infra.apply up --stack {self.stack}` (or `pulumi up --refresh --stack "
            f"{self.stack}`) makes it again with its volumes, so cached data written to Redis's "
            "append-only file is kept"
        )
        return self._unusable(name, f"is not running ({how})", way)

    def _unusable(self, name: str, what: str, way: str) -> dict[str, Any]:
        raise Stated(
            f"{name} {what}, so nothing can be asked of it; nothing was changed. {way}, then "
            "run the rotation again"
        )

    def _trusted(self, name: str, role: Role) -> dict[str, Any]:
        """The `docker inspect` of the container `name`, once it is this stack's `role`: its
        labels, and the image the local applier's state records for it when there is one
        (`self.recorded`). Else NotTrusted: nothing is run in it. Whatever else holds the name
        (made by hand, by another account or stack) could print any certificate and files,
        and rotate.sh would pass a step that did not take, or retire a CA Redis still serves
        (retire_refusal)."""
        with _looking_up(name):
            found: dict[str, Any] = self.client.api.inspect_container(name)
        if (why := self._not_recorded(found, role)) is not None:
            raise NotTrusted(self._not_asked(name, why))
        return found

    def _not_recorded(self, found: dict[str, Any], role: Role) -> str | None:
        """`_not_ours` against what the state records for `role`; when that refuses and the
        state can be read again (`self.reread`), against the state as it is now: an up that
        replaced the container since the last read recorded its successor."""
        for again in (False, True):
            if again:
                if self.reread is None:
                    break
                self.recorded = self.reread()
            recorded = self.recorded
            why = self._not_ours(
                found,
                role,
                None if recorded is None else recorded.images.get(role),
                labels_only=recorded is None,
                container=None if recorded is None else recorded.containers.get(role),
            )
            if why is None:
                return None
        return why

    def _not_asked(self, name: str, why: str) -> str:
        """The snapshot's NotTrusted message: what `name` is, that nothing was run in it or
        changed, and the way on (the stack's own made anew by its deployer)."""
        applier = f"`python -m infra.apply up --stack {self.stack}`"
        if self.recorded is None:
            anew = (
                f"`pulumi up --refresh --stack {self.stack}` (a stack the local applier "
                f"deployed: {applier})"
            )
        else:
            anew = f"{applier} (it makes it from the image its state records)"
        return (
            f"{name}: {why}; it was left alone (nothing was run in it, nothing removed) and "
            "the probe changed nothing. A rotation is judged by what this stack's own Redis "
            "and app show (whether a step took, whether an up may retire a CA), never by "
            f"another container's answers. See who made it (`docker inspect {name}`) and "
            f"remove it if it is no one's (`docker rm -f {name}`); then make the stack's own "
            f"anew with {anew}, and run the same command again"
        )

    def served_issuer(self, app_image: str | None) -> str | None:
        """The serial of the CA in Redis's volume that issued the certificate Redis presents
        to a new connection (None: none of them). Two execs, not a snapshot: the app's API
        need not answer, and the app need not run (`_served`). `app_image`: the image ID the
        stack's state records for the app container (None: it records none). Redis's own
        bundle only: the container holding its name is checked as snapshot() checks it."""
        redis = self._trusted(self.redis, Role.REDIS)
        (bundle,) = self._files(self.redis, (f"{REDIS_DIR}/ca.crt",), redis["Id"])
        return issuer_serial(self._served(app_image), bundle)

    def _served(self, app_image: str | None) -> str:
        """The certificate Redis presents to the app's identity (SERVED_ONLY). Where from is
        decided here only: inside the app container when it runs; else from a short-lived
        copy of it (`_beside`), so a stopped app does not keep an operator from retiring a
        CA (infra/apply.py asks before its up) while Redis is still looked at, never guessed."""
        argv = served_command(REDIS_ALIAS, self.port)
        # Named as _trusted names it: the refusal quoted Docker's bare 404 instead.
        with _looking_up(self.app):
            app = self.client.containers.get(self.app)
        # Only the stack's own app is trusted to show what Redis serves: whatever else holds
        # its name (made by hand, another account, another stack) could print any certificate,
        # and a wrong one here retires a CA Redis still serves (retire_refusal).
        ours = None if self.recorded is None else self.recorded.containers.get(Role.APP)
        why = self._not_ours(app.attrs, Role.APP, app_image, container=ours)
        if why is not None:
            raise NotTrusted(self._untrusted(self.app, why))
        if app.status == "running":
            # By name, as before: the container whose attributes were just checked.
            return self._read(self.app, argv, None, lambda out: served_pem(self.app, out))
        # Its output is the container's log, which the engine keeps: not an exec's stream.
        return self._beside(app.attrs, argv, app_image)

    def _not_ours(
        self,
        found: dict[str, Any],
        role: Role,
        image: str | None,
        *,
        labels_only: bool = False,
        container: str | None = None,
    ) -> str | None:
        """Why the container `found` (its `docker inspect`) is not this stack's of `role`
        running `image`, the image ID the stack's state records for that container, and, when
        it records its ID (`container`), that very container. Labels alone are not enough:
        whoever may use the engine can put any label on a container of any image, and run the
        recorded image with forged volumes, but not make the state record its image or ID.
        `labels_only`: there is no such state (a stack `pulumi up` deployed), the labels are
        all there is to check."""
        labels = (found.get("Config") or {}).get("Labels") or {}
        if labels.get(STACK_LABEL) != self.stack or labels.get(ROLE_LABEL) != role.value:
            return (
                f"it is not labelled {STACK_LABEL}={self.stack} and {ROLE_LABEL}={role.value}, "
                "so this stack did not make it"
            )
        if labels_only:
            return None
        if image is None:
            return (
                f"the stack's state records no image for its {role.value} (an up was "
                f"interrupted before it made the {role.value}), so nothing tells the stack's "
                f"{role.value} from a look-alike"
            )
        if (runs := str(found.get("Image") or "")) != image:
            return (
                f"it runs image {_short_id(runs)}, not {_short_id(image)}, the one the stack's "
                f"state records for its {role.value}, so this stack's applier did not make it "
                "(labels can be put on any container)"
            )
        if container is not None and (made := str(found.get("Id") or "")) != container:
            return (
                f"it is container {_short_id(made)}, not {_short_id(container)}, the one the "
                f"stack's state records for its {role.value}, so this stack's applier did not "
                "make it (its labels, image and volumes can be copied, its ID cannot)"
            )
        return None

    def _untrusted(self, name: str, why: str) -> str:
        """NotTrusted's message: what `name` is, that nothing was changed, and the way on."""
        redis = object_name(self.stack, "redis")
        if name == self.app:
            again = (
                f"once it is gone, stop Redis (`docker stop {redis}`): the up is then not "
                "asked, makes the app anew from the image its state records and starts Redis "
                "from its volume's files, which the retire keeps"
            )
        else:
            again = "once it is gone, the short-lived copy of the app can be made"
        return (
            f"{name}: {why}; it was left alone (neither asked nor removed) and nothing was "
            "changed. The next up "
            "retires a CA, and only the stack's own app may show which certificate Redis "
            f"serves. See who made it (`docker inspect {name}`) and remove it if it is no one's "
            f"(`docker rm -f {name}`); {again}; then run the same command again"
        )

    def _beside(self, app: dict[str, Any], argv: list[str], app_image: str | None) -> str:
        """`argv`'s output in a container like the stopped app `app` (its `docker inspect`):
        its image, uid and volumes (read-only), on the backend network only, confined as the
        app is (read-only root, no capabilities, no-new-privileges, its memory, CPU and nproc
        bounds), labelled as the stack's (removal finds one an interrupted up left), and
        removed once it has printed. Nothing is written: the app's files are only read."""
        from docker.types import Mount, Ulimit  # noqa: PLC0415 - as in __init__

        name = object_name(self.stack, SERVED_PROBE)
        host = app["HostConfig"]
        mounts = [
            Mount(target=m["Destination"], source=m["Name"], type="volume", read_only=True)
            for m in app.get("Mounts") or []
            if m.get("Type") == "volume"
        ]
        ulimits = [
            Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"])
            for u in host.get("Ulimits") or []
        ]
        with _observing(name):
            self._remove_left(name, app_image)  # one an interrupted probe left
            container = self.client.containers.create(
                app["Image"],
                argv[1:],
                entrypoint=argv[:1],
                name=name,
                user=app["Config"]["User"],
                mounts=mounts,
                network=object_name(self.stack, Role.BACKEND.value),
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                ipc_mode="private",
                mem_limit=host.get("Memory") or None,
                memswap_limit=host.get("MemorySwap") or None,
                nano_cpus=host.get("NanoCpus") or None,
                ulimits=ulimits,
                labels=label_pairs(self.stack, Role.APP),
            )
            try:
                container.start()
                code = int(container.wait(timeout=self.served_timeout)["StatusCode"])
                text = bytes(container.logs(stdout=True, stderr=True)).decode(errors="replace")
            finally:
                container.remove(force=True)
        if code != 0:
            shown = printable(text.strip()[-300:])
            raise ProbeError(f"{name}: {argv[0]} exited {code}: {shown}")
        return text

    def _remove_left(self, name: str, app_image: str | None) -> None:
        """Remove the probe container `name` an interrupted probe left (labelled as the
        stack's app, of the app's recorded image); one this stack did not make (another
        account's, a look-alike) is never removed: NotTrusted instead, and the retire is
        refused until its owner removes it."""
        from docker.errors import NotFound  # noqa: PLC0415 - as in __init__

        try:
            left = self.client.containers.get(name)
        except NotFound:
            return
        if (why := self._not_ours(left.attrs, Role.APP, app_image)) is not None:
            raise NotTrusted(self._untrusted(name, f"it already exists and {why}"))
        with suppress(NotFound):
            left.remove(force=True)

    def data_files(self, redis_id: str) -> tuple[list[str], str]:
        """Every file under Redis's data directory (paths relative to it) and the AOF
        manifest, in one exec (DATA_LISTING)."""
        return self._read(
            self.redis,
            ["sh", "-c", DATA_LISTING],
            redis_id,
            lambda printed: split_listing(self.redis, printed),
        )

    def rewrite_aof(self, sleep: Callable[[float], None] = time.sleep) -> Rewritten:
        """Have the exporter ask Redis for an AOF rewrite and wait for it (REWRITE_COMMAND),
        then look at Redis's data directory until the older AOF parts are gone (Redis deletes
        them from a background thread just after the rewrite) or LEFT_WAIT_S passed. Only
        the stack's own Redis and exporter are asked (`_trusted`), each by its checked ID."""
        from infra.docker_exec import exec_run  # noqa: PLC0415 - as docker in __init__

        redis = self._running(self._trusted(self.redis, Role.REDIS))
        exporter = self._running(self._trusted(self.exporter, Role.EXPORTER))
        _, manifest = self.data_files(redis["Id"])
        before = _base(self.redis, manifest)
        with _observing(self.exporter):
            code, out = exec_run(self.client.containers.get(exporter["Id"]), list(REWRITE_COMMAND))
        said = printable(out.decode(errors="replace").strip()[-500:])
        if code != 0:
            return Rewritten(said=said, failed=True, before=before, after=before, left=[])
        deadline = time.monotonic() + LEFT_WAIT_S
        while True:
            files, manifest = self.data_files(redis["Id"])
            after, left = _base(self.redis, manifest), left_behind(files, manifest)
            if (after != before and not left) or time.monotonic() > deadline:
                return Rewritten(said=said, failed=False, before=before, after=after, left=left)
            sleep(LEFT_POLL_S)

    def round_trip(self) -> bool:
        """A write and a read through the app's HTTP API, of the stack's own app only (as
        snapshot(): _wait runs this first, and a container found not to be the stack's must
        have had nothing run in it when the snapshot after says so)."""
        key, value = f"/cache/rotation-probe-{uuid.uuid4().hex}", uuid.uuid4().hex
        try:
            app = self._trusted(self.app, Role.APP)
            said = self._exec(self.app, round_trip_command(key, value), app["Id"])
        except ProbeError:
            return False
        return said.strip() == "same"


# Redis's data directory, read in its container: every file under it (relative paths), a NUL,
# the AOF manifest, a NUL (split_listing checks the framing: a short read is read again).
DATA_LISTING: Final = (
    f'cd {DATA_DIR} && find . -mindepth 1 -type f -printf "%P\\n" && printf "\\000" '
    f'&& cat {AOF_DIR}/{MANIFEST} && printf "\\000"'
)
# What the exporter runs for a rewrite (app/secure_cache/redis_exporter.py `rewrite-aof`).
REWRITE_COMMAND: Final = ("python3", "-m", "secure_cache.redis_exporter", "rewrite-aof")
# How long the older AOF parts may take to go after the rewrite (a background thread deletes
# them at once; this only rides out a busy disk), and how often the directory is read.
LEFT_WAIT_S: Final = 15.0
LEFT_POLL_S: Final = 0.5


def split_listing(where: str, printed: str) -> tuple[list[str], str]:
    """DATA_LISTING's output: the files, the manifest. ProbeError when it is not whole."""
    parts = printed.split("\0")
    if len(parts) != 3 or parts[2].strip():
        raise ProbeError(f"{where}: the listing of {DATA_DIR} came back incomplete")
    return [line for line in parts[0].splitlines() if line], parts[1]


def _base(where: str, manifest: str) -> str:
    try:
        return base_file(manifest)
    except ManifestError as exc:
        raise ProbeError(f"{where}: {DATA_DIR}/{AOF_DIR}/{MANIFEST}: {exc}") from None


@dataclass(frozen=True)
class Rewritten:
    """What `rewrite-aof` saw: the exporter's line, and Redis's AOF base before and after."""

    said: str
    failed: bool
    """The exporter's rewrite-aof exited other than 0 (its line says why)."""
    before: str
    after: str
    left: list[str]
    """Files under Redis's data directory older than the rewrite, or outside the AOF."""


def rewrite_problems(stack: str, seen: Rewritten) -> list[str]:
    """What is wrong after `rewrite-aof`, each with what to do; empty when Redis's files hold
    nothing older than the rewrite."""
    redis = object_name(stack, "redis")
    again = f"then run python -m infra.rotation_probe rewrite-aof --stack {stack} again"
    if seen.failed:
        return [
            f"the exporter could not have Redis rewrite its append-only file ({seen.said}); "
            f"entries sealed with the retired data key stay in {DATA_DIR}/{AOF_DIR} until it "
            f"does. scripts/status.sh {stack} says whether Redis and the exporter answer; "
            f"{again}"
        ]
    problems = []
    if seen.after == seen.before:
        problems.append(
            f"Redis's AOF base is still {seen.before} after the rewrite, so its older parts "
            f"were not replaced; see `docker logs {redis}` for the rewrite, {again}"
        )
    if seen.left:
        shown = ", ".join(seen.left[:10]) + (" ..." if len(seen.left) > 10 else "")
        problems.append(
            f"{redis}'s {DATA_DIR} still holds {shown}: not part of the AOF Redis just wrote, "
            "so they may hold entries sealed with the retired data key. Redis does not read "
            f"them: remove each (docker exec {redis} rm -- {DATA_DIR}/NAME; an AOF part Redis "
            "keeps as history means `aof-disable-auto-gc yes` was set at runtime: set it back "
            f"with the reload job's CONFIG SET or an up), {again}"
        )
    return problems


def _identity(found: dict[str, Any]) -> dict[str, str]:
    """A container's ID and start, from its `docker inspect`: restarted() compares them."""
    return {"id": found["Id"][:12], "startedAt": found["State"]["StartedAt"]}


def restarted(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One line per consumer whose container was restarted or replaced between the two
    snapshots, in words (its start times, its ID when it is another container): rotate.sh
    restarts neither, so someone or something else did (`docker restart`, an up, the
    engine)."""
    was, now_ = before["containers"], now["containers"]
    lines = []
    for role, who in (("redis", "Redis"), ("app", "the app")):
        old, new = was[role], now_[role]
        if old == new:
            continue
        if old.get("id") != new.get("id"):
            lines.append(
                f"{who} container was replaced while the rotation ran (container "
                f"{old.get('id')} started {old.get('startedAt')}, now {new.get('id')} "
                f"started {new.get('startedAt')})"
            )
        else:
            lines.append(
                f"{who} container was restarted while the rotation ran (container "
                f"{new.get('id')} started {old.get('startedAt')}, again {new.get('startedAt')})"
            )
    return lines


def unsettled(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What still stands between `now` and every consumer using the material it was given."""
    waiting = []
    if now.get("app_backend") != "redis":
        # A round trip alone would pass on the app's in-memory fallback.
        waiting.append("the app is not using Redis (it answers from its memory fallback)")
    if now["served_serial"] != now["server_serial"]:
        waiting.append(NOT_SERVED)
    if now["app_password"] not in now["acl"].get(APP_USER, []):
        waiting.append("the app's password file is not among the ACL's app passwords")
    if now["app_cert_issuer"] is None:
        waiting.append("Redis does not trust the CA of the app's certificate")
    if set(now["redis_trusts"]) != set(now["app_trusts"]):
        waiting.append("Redis and the app trust different CAs")
    reloads_before, reloads_now = before.get("material_reloads"), now.get("material_reloads")
    # A restarted app read its files at start, and its reload counter began again from 0.
    if (
        now["containers"]["app"] == before["containers"]["app"]
        and now["app_material"] != before["app_material"]
        and isinstance(reloads_before, int)
        and isinstance(reloads_now, int)
        and reloads_now <= reloads_before
    ):
        waiting.append("the app has not reloaded its new files yet")
    return waiting


def unfinished(now: dict[str, Any]) -> dict[str, str]:
    """Rotations a snapshot shows half done, by rotate.sh kind, and what shows it. An
    interrupted rotate.sh (or an `up` that took one step of several) leaves them. Starting the
    same rotation again on top drops what the first one still needs: a second data-key bump
    retires the key the entries not yet moved are sealed with, and they are lost."""
    found: dict[str, str] = {}
    if now["previous_key_ids"]:
        found["data-key"] = (
            f"the app still reads {len(now['previous_key_ids'])} previous data key(s): the "
            "rotation pass has not finished or the old key was not retired"
        )
    if rotating := sorted(user for user, hashes in now["acl"].items() if len(hashes) > 1):
        found["passwords"] = f"ACL users with two passwords: {', '.join(rotating)}"
    if len(now["redis_trusts"]) > 1 or len(now["app_trusts"]) > 1:
        found["ca"] = "two CAs are trusted: a CA rollover is under way"
    # The one rotation whose second step is the operator's (scripts/rotate.sh api-token-retire,
    # once the clients switched): rotate.sh retires only when this says one waits.
    if previous := now["api_previous_tokens"]:
        found["api-token"] = (
            f"the app still accepts {previous} earlier API token(s) beside the current one"
        )
    return found


def retire_refusal(stack: str, served_issuer: str | None, staying: Collection[str]) -> str | None:
    """Why the next `up` must not run, or None: it leaves Redis's TLS reload job trusting only
    the CAs `staying` (their serials), and Redis presents a certificate of another CA (of
    `served_issuer`, None when its volume trusts that CA no more). That is a CA rollover's
    promote whose TLS reload did not take, before the retire step: the job would no longer
    verify Redis, and every `up` after failed until Redis was restarted by hand
    (docs/day2.md). The old CA is not kept past the retire instead: nothing is trusted longer than
    the rollover says. The local applier (infra/apply.py, `staying` the bundle the up would
    write) and scripts/rotate.sh (`guard`, `staying` the CA that issued the volume's server
    certificate, which every step keeps) both ask this before an up."""
    if served_issuer is not None and served_issuer in staying:
        return None
    redis, job = object_name(stack, "redis"), object_name(stack, "reload-tls")
    if served_issuer is None:
        what = "a certificate of a CA its volume no longer trusts (a retire step ran after it)"
        way = f"`docker restart {redis}` (it reads its volume's files; clients reconnect)"
    else:
        what = f"a certificate of CA {served_issuer}, which the next up's retire step drops"
        way = (
            f"the promote's TLS reload again, `docker start --attach {job}` (if that "
            f"container is gone or fails, `docker restart {redis}`)"
        )
    return (
        f"Redis serves {what}: the TLS reload of the CA rollover's promote step did not take, "
        "and after the retire its reload job would no longer verify Redis; nothing was "
        f"changed. Run {way}, then run the same command again"
    )


def unobserved_refusal(stack: str, why: str) -> str:
    """retire_refusal's line when what Redis presents cannot be read before such an up. The
    way past it that always holds is a stopped Redis: the applier asks only a running one
    (infra/apply.py `_retire_refusal`). A restart of Redis is not: with the app container
    gone, what Redis serves is still read from nowhere after it."""
    redis, app = object_name(stack, "redis"), object_name(stack, "app")
    return (
        f"cannot tell which CA's certificate Redis serves ({why}), and the next up retires a "
        "CA: it would lock Redis's TLS reload job out if the promote's reload did not take; "
        f"nothing was changed. Make sure {redis} answers and {app} exists (it need not run: "
        "a stopped app is looked at from a short-lived copy of it on the backend network); "
        f"or stop Redis (`docker stop {redis}`): the up does not ask a Redis that is not "
        "running, makes the containers that are missing or stopped anew (Redis on its own "
        "volumes, its data kept), and they read the files the retire writes (clients "
        "reconnect). Then run the same command again"
    )


def expected_changes(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a finished rotation of `kind` must have changed; missing ones are returned."""
    missing = []
    kinds = ("certs", "passwords", "data-key", "ca", "api-token") if kind == "all" else (kind,)
    # A rotation found half done at the start (unfinished) was finished, not started again: its
    # first step (a new key, a new CA issuing) happened before `before`.
    resumed = unfinished(before)
    # A rollover found promoted had issued the leaves from the new CA before `before`, and its
    # last step renews none: a resumed one must end with both leaves issued by the one CA left.
    ca_resumed = "ca" in resumed
    if "certs" in kinds or ("ca" in kinds and not ca_resumed):
        if after["server_serial"] == before["server_serial"]:
            missing.append("the server certificate was not renewed")
        if after["app_cert_serial"] == before["app_cert_serial"]:
            missing.append("the app's client certificate was not renewed")
    if "ca" in kinds and (
        (after["server_issuer"] == before["server_issuer"] and not ca_resumed)
        or len(after["redis_trusts"]) != 1
        or (
            ca_resumed
            and not after["redis_trusts"] == [after["server_issuer"]] == [after["app_cert_issuer"]]
        )
    ):
        missing.append("the CA did not roll over to a single new CA")
    if "passwords" in kinds:
        for user, hashes in after["acl"].items():
            if user != "default" and (hashes == before["acl"].get(user) or len(hashes) != 1):
                missing.append(f"ACL user {user} did not end with one new password")
    if "data-key" in kinds and (
        (after["primary_key_id"] == before["primary_key_id"] and "data-key" not in resumed)
        or after["previous_key_ids"]
    ):
        missing.append("the data key did not rotate to one new key with the old one retired")
    missing += _api_token_changes(kind, before, after)
    return missing


def _api_token_changes(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`api-token` adds a new token beside the old one, `api-token-retire` drops the old one,
    `all` does both; any other rotation leaves the token alone."""
    renewed = after["api_token"] != before["api_token"]
    beside = after["api_previous_tokens"]
    if kind == "api-token" and not (renewed and beside == 1):
        return ["the app did not get a new API token with the old one still accepted beside it"]
    if kind == "api-token-retire" and (renewed or beside):
        return ["the old API token was not retired (or the current one changed)"]
    if kind == "all" and not (renewed and beside == 0):
        return ["the API token did not rotate to one new token with the old one retired"]
    return []


def report_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    def line(what: str, old: Any, new: Any) -> str:
        return f"{what}: {'unchanged' if old == new else 'changed'} ({old} -> {new})"

    lines = [
        line("server certificate serial", before["server_serial"], after["server_serial"]),
        line("served to new connections", before["served_serial"], after["served_serial"]),
        line("app client certificate serial", before["app_cert_serial"], after["app_cert_serial"]),
        line("CAs trusted", before["redis_trusts"], after["redis_trusts"]),
        line("data key id", before["primary_key_id"], after["primary_key_id"]),
        line("previous data keys", before["previous_key_ids"], after["previous_key_ids"]),
        line("API token (fingerprint)", before["api_token"], after["api_token"]),
        line(
            "earlier API tokens accepted",
            before["api_previous_tokens"],
            after["api_previous_tokens"],
        ),
    ]
    for user in sorted(set(before["acl"]) | set(after["acl"])):
        if user != "default":
            lines.append(
                line(f"ACL {user} password hashes", before["acl"].get(user), after["acl"].get(user))
            )
    for role in ("redis", "app"):
        lines.append(
            line(
                f"{role} container (id, start)",
                tuple(before["containers"][role].values()),
                tuple(after["containers"][role].values()),
            )
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m infra.rotation_probe")
    parser.add_argument(
        "action", choices=("snapshot", "wait", "report", "unfinished", "guard", "rewrite-aof")
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--before", type=Path, help="a snapshot file (wait, report)")
    parser.add_argument(
        "--kind", choices=KINDS, help="report: the rotation that ran; unfinished: the one asked"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=120.0, help="wait: seconds to wait (1 to 86400)"
    )
    parser.add_argument(
        "--applier-state",
        action="store_true",
        help="the local applier deploys the stack: trust Redis and the app only when they run "
        "the images its state records (scripts/rotate.sh passes it when it deploys so)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.stack, load_stack_file(args.stack))
        before = read_snapshot(args.before, args.stack, args.action) if args.before else None
        if args.action in ("unfinished", "guard") and before is not None:
            return _of_snapshot(args.action, args.stack, args.kind, before)
        # Under `pulumi up` the local applier's state, if any, is not what deployed the stack:
        # its images would refuse the stack's own containers, so it is read only when asked.
        # Read now, and again when a container differs from it (Probe.reread): the state as
        # it is at the moment of each look, after whatever up replaced a container meanwhile.
        probe = Probe(
            args.stack,
            settings.redis_port,
            recorded=recorded_state(args.stack) if args.applier_state else None,
            reread=(lambda: recorded_state(args.stack)) if args.applier_state else None,
        )
        if args.action in ("snapshot", "rewrite-aof"):  # the two that need no --before
            return (
                _rewrite_aof(probe, args.stack)
                if args.action == "rewrite-aof"
                else _snapshot(probe, args.stack, args.applier_state)
            )
        if before is None:
            parser.error(f"{args.action} needs --before")
        if args.action == "wait":
            return _wait(probe, before, args.timeout)
        after = probe.snapshot()
        for text in report_lines(before, after):
            say(f"rotate: {text}")
        # A restart by someone else is named; the rotation is judged by what changed (each
        # step's wait saw every consumer take its material).
        for line in restarted(before, after):
            print(f"rotate: warning: {line} (not by rotate.sh)", file=sys.stderr)
        problems = expected_changes(args.kind or "all", before, after)
        for problem in problems:
            print(f"rotate: error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    except ProbeError as exc:
        print(f"rotation_probe: error: {exc}{way_on(args.stack, exc)}", file=sys.stderr)
        return 3
    except (SettingsError, OSError, ValueError) as exc:
        print(f"rotation_probe: error: {exc}", file=sys.stderr)
        return 2


# The longest `wait` takes: a day. `--timeout inf` waited for ever on a stack not deployed.
_MAX_WAIT_S: Final = 86400.0


def _seconds(text: str) -> float:
    """A --timeout: `nan`, `0` or `-1` ran no look at all and exited 1 ("not settled") with
    nothing said."""
    try:
        # float() reads every script's digits (fullwidth among them); the project's numbers
        # are written in 0-9 (infra/settings.py's _in_range refuses the others alike).
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not 1.0 <= value <= _MAX_WAIT_S:  # False for NaN too
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 1 to {_MAX_WAIT_S:.0f}, got {quoted(text)}"
        )
    return value


def way_on(stack: str, exc: ProbeError) -> str:
    """What to run after `exc`, matched to its cause, as the end of its line: the one place
    that decides it (scripts/rotate.sh says only that nothing was changed). A Stated error
    carries its own."""
    if isinstance(exc, Stated):
        return ""
    if isinstance(exc, Missing):
        return (
            f". Not deployed: scripts/setup-secure-redis.sh {stack}. "
            f"Deployed, and an up was interrupted or failed: python -m infra.apply up --stack "
            f"{stack} (or pulumi up --refresh --stack {stack}) makes it again, then run the "
            "rotation again"
        )
    return (
        f". scripts/status.sh {stack} says what answers (a Redis at "
        "maxclients refuses every new connection: the exporter's "
        "redis_rejected_connections_total counts them); then run the rotation again"
    )


# Keys every snapshot holds (snapshot_of) that each action reading one uses: `unfinished`
# reads these five (a partial snapshot of them is enough: tests/unit/test_operator_imports.py),
# `guard` the server's issuer, `wait` and `report` compare whole snapshots.
_UNFINISHED_KEYS: Final = (
    "previous_key_ids",
    "acl",
    "redis_trusts",
    "app_trusts",
    "api_previous_tokens",
)
_SNAPSHOT_KEYS: Final = {
    "unfinished": _UNFINISHED_KEYS,
    "guard": ("server_issuer",),
    "wait": ("containers", "server_issuer", *_UNFINISHED_KEYS),
    "report": ("containers", "server_issuer", *_UNFINISHED_KEYS),
}
# A snapshot is a few KiB; reading a wrong --before whole (/dev/zero) never ended.
_MAX_SNAPSHOT_BYTES: Final = 4 << 20


def read_snapshot(path: Path, stack: str, action: str) -> dict[str, Any]:
    """The snapshot in `path` (`snapshot`'s output), or ValueError with the fix: `{}` or `[]`
    were KeyError/TypeError tracebacks, /dev/zero was read until memory ran out."""
    again = (
        f"take one with `python -m infra.rotation_probe snapshot --stack {stack} > FILE` "
        "(scripts/rotate.sh does)"
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ValueError(f"--before {path} is not a regular file; {again}")
            data = handle.read(_MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"--before {path} cannot be read ({exc.strerror}); {again}") from None
    try:
        before = json.loads(data) if len(data) <= _MAX_SNAPSHOT_BYTES else None
    except ValueError:  # not JSON, not UTF-8
        before = None
    needed = _SNAPSHOT_KEYS.get(action, ())
    if not isinstance(before, dict) or any(k not in before for k in needed):
        raise ValueError(f"--before {path} is not a snapshot of this version; {again}")
    return before


# How often a long look says it is still at it. scripts/rotate.sh's snapshot before an up took
# 9-15 s and its wait after one 12-21 s with no line at load 24-36 (s45, 2026-12-03): 75 % of
# `rotate.sh S api-token-retire`. Shorter looks say nothing.
PROGRESS_EVERY_S: Final = 10.0


class Progress:
    """While a look runs: `rotate: still DOING (N s so far)[: DETAIL]` every `every` seconds,
    from a thread, so one slow `docker exec` is covered too. `detail` may change meanwhile
    (`_wait` names what it waits for). Only the probe's own words, never a value read."""

    def __init__(self, doing: str, every: float | None = None, out: TextIO | None = None) -> None:
        self.doing = doing
        self.detail = ""
        self._every = PROGRESS_EVERY_S if every is None else every
        self._out = out
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rotate-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def line(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"rotate: still {self.doing} ({time.monotonic() - self._start:.0f} s so far){detail}"

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            print(self.line(), file=self._out or sys.stderr, flush=True)


def _rewrite_aof(probe: Probe, stack: str) -> int:
    """`rewrite-aof`: the exporter's line, then 0, or each problem and 1."""
    with Progress("rewriting Redis's append-only file"):
        seen = probe.rewrite_aof()
    problems = rewrite_problems(stack, seen)
    for problem in problems:
        print(f"rotate: error: {problem}", file=sys.stderr)
    if not problems:
        say(
            f"rotate: {seen.said.removeprefix('rewrite-aof: ')}; {DATA_DIR} holds only the "
            f"new AOF ({seen.after} and its incremental part): no entry older than the rewrite"
        )
    return 1 if problems else 0


def _snapshot(probe: Probe, stack: str, applier_state: bool) -> int:
    """Print the snapshot; exit 4 (BUSY) instead, with the holder's line, while an up of the
    stack runs: nothing is wrong with the stack, and rotate.sh says only that line."""
    if applier_state and (busy := applier_busy(stack)) is not None:
        print(f"rotation_probe: error: {busy}", file=sys.stderr)
        return BUSY
    with Progress("reading what Redis and the app use"):
        taken = probe.snapshot()
    say(json.dumps(taken))
    return 0


def _of_snapshot(action: str, stack: str, kind: str | None, before: dict[str, Any]) -> int:
    """The actions that read only a snapshot taken before (scripts/rotate.sh)."""
    if action == "guard":
        # Before an up, of the snapshot taken then: exit 3 (an earlier step incomplete) with
        # the one line when that up would lock the TLS reload job out.
        staying = [before["server_issuer"]]
        if (refused := retire_refusal(stack, before.get("served_issuer"), staying)) is not None:
            print(f"rotation_probe: error: {refused}", file=sys.stderr)
            return 3
        return 0
    # Why a `kind` rotation is half done (nothing when it is not; scripts/rotate.sh reads
    # this), or every one as `kind: why` lines.
    for found, why in unfinished(before).items():
        if kind is None:
            say(f"{found}: {why}")
        elif found == kind:
            say(why)
    return 0


def served_evidence(before: dict[str, Any], now: dict[str, Any]) -> str:
    """Which certificate Redis serves, beside the volume's, now and before the `up`: served ==
    served before means the reload did not take; a third serial means the volume was written
    again after the reload."""
    return (
        f"serial served to a new connection {now['served_serial']}, in Redis's volume "
        f"{now['server_serial']}; before this up: served {before['served_serial']}, "
        f"volume {before['server_serial']}"
    )


def _wait(probe: Probe, before: dict[str, Any], timeout: float) -> int:
    with Progress("waiting until Redis and the app use what the up gave them") as progress:
        return _waited(probe, before, timeout, progress)


def _waited(probe: Probe, before: dict[str, Any], timeout: float, progress: Progress) -> int:
    deadline = time.monotonic() + timeout
    waiting: list[str] = []
    now: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        # Traffic first: a client may look at its files only when it is used.
        probe.round_trip()
        try:
            now = probe.snapshot()
        except NotTrusted:
            raise  # another's container: looking again would not make it the stack's
        except ProbeError as exc:
            waiting = [str(exc)]
        else:
            # A consumer restarted meanwhile (not by rotate.sh: found on s90, 2026-12-03,
            # `docker restart` of the app during `rotate.sh certs`) read its files at start:
            # the step took when every consumer uses what it was given, as for any other.
            waiting = unsettled(before, now)
            if not waiting and probe.round_trip():
                for line in restarted(before, now):
                    print(f"rotate: warning: {line}; {RESTART_TOOK}", file=sys.stderr)
                return 0
            waiting = waiting or ["a round trip through the app failed"]
        progress.detail = "; ".join(waiting)
        time.sleep(1.0)
    if now is not None:
        for line in restarted(before, now):
            print(f"rotate: error: {line}", file=sys.stderr)
    for reason in waiting:
        print(f"rotate: error: not settled after {timeout:.0f}s: {reason}", file=sys.stderr)
    if NOT_SERVED in waiting and now is not None:
        for line in [served_evidence(before, now), *probe.reload_evidence()]:
            print(f"rotate: evidence: {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    exit_with(main)


__all__ = [
    "APP_FACTS",
    "ENGINE_TIMEOUT_S",
    "KINDS",
    "PROGRESS_EVERY_S",
    "REDIS_FILES",
    "RESTART_TOOK",
    "ROUND_TRIP",
    "SERVED_ONLY",
    "SERVED_PROBE",
    "SNAPSHOT_ROLES",
    "Missing",
    "NotTrusted",
    "Probe",
    "ProbeError",
    "Progress",
    "Recorded",
    "Stated",
    "acl_fingerprints",
    "app_facts_command",
    "bundle_serials",
    "expected_changes",
    "files_command",
    "fingerprint",
    "issuer_serial",
    "main",
    "read_app_facts",
    "recorded_state",
    "report_lines",
    "restarted",
    "retire_refusal",
    "round_trip_command",
    "served_command",
    "served_evidence",
    "served_pem",
    "served_serial",
    "snapshot_of",
    "split_files",
    "unfinished",
    "unobserved_refusal",
    "unsettled",
    "way_on",
]
