"""Security model 4/5 (secrets): certificates, keys and passwords exist only as files in the
consumers' read-only material volumes, with tight modes, and nowhere else (P-15): not in the
environment, argv, health checks, labels, logs or image layers.

The secret values never leave their containers: each haystack is copied into the container
that can read the secret, and `grep -F` there reports only whether it was found.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest

from infra import pki
from infra.components.material import STAGING_DIR
from infra.naming import Role
from infra.runtime_ids import runtime_id
from tests.e2e.hosts import container_host, docker_cli, stat_dir
from tests.e2e.probes import APP_MATERIAL, ProbeContainer, probe_labels
from tests.e2e.stacks import Stack

pytestmark = pytest.mark.security("data")

REDIS_MATERIAL = "/etc/secure-redis"
SECRET_FILES = {
    "redis": ["server.key", "healthcheck.key", "healthcheck.password"],
    "app": ["app.key", "redis.password", "data.key", "api.token"],
    "redis-exporter": ["exporter.key", "redis.password"],
    # data.previous-keys is empty while no rotation is under way: nothing to search for.
    "rotation": ["rotation.key", "redis.password", "data.key"],
}
ROLE_OF = {
    "redis": Role.REDIS,
    "app": Role.APP,
    "redis-exporter": Role.EXPORTER,
    "rotation": Role.ROTATION,
}
MATERIAL_OWNERS = tuple(ROLE_OF)


def uid_of(stack: Stack, role: str) -> int:
    """The uid (= gid) the role's container of this stack runs as (infra/runtime_ids.py)."""
    return runtime_id(stack.name, ROLE_OF[role], stack.settings.runtime_id_slot)


MATERIAL = {
    "redis": REDIS_MATERIAL,
    "app": APP_MATERIAL,
    "redis-exporter": APP_MATERIAL,
    "rotation": APP_MATERIAL,
}
# PEM files: their first base64 line is the needle; other secrets: the whole (stripped) file.
# A secret file that is missing, empty or unreadable, or whose needle comes out empty, stops the
# search with an error (an empty needle would otherwise read as "not leaked"). Per file it
# prints `checked NAME LENGTH` and, when found, `leaked NAME SHA256-PREFIX OFFSET...` (the
# needle's hash and the byte offsets of its first three occurrences); never the needle itself.
# $1 is the haystack: a path of this search's own, because the readers are shared (Redis'
# container serves every test whose secrets are Redis', and pytest-xdist's workers run those
# side by side): with one fixed path, one search's `rm` took away the other's haystack
# ("no haystack", tamper15b's flake of [app-redis], reproduced on s42 with -n 2).
_FIND = """
set -eu
haystack="$1"; shift
trap 'rm -f "$haystack"' EXIT
[ -r "$haystack" ] || { echo "no haystack" >&2; exit 2; }
for f in "$@"; do
    name="${f##*/}"
    [ -f "$f" ] && [ -r "$f" ] && [ -s "$f" ] || {
        echo "$name: missing, unreadable or empty" >&2; exit 3; }
    if head -n 1 "$f" | grep -q '^-----BEGIN'; then needle="$(sed -n 2p "$f")"
    else needle="$(cat "$f")"; fi
    [ -n "$needle" ] || { echo "$name: empty needle" >&2; exit 4; }
    echo "checked $name ${#needle}"
    if grep -qF -- "$needle" "$haystack"; then
        digest="$(printf '%s' "$needle" | sha256sum | cut -c1-12)"
        at="$(grep -boF -- "$needle" "$haystack" | head -n 3 | cut -d: -f1 | tr '\\n' ' ')"
        echo "leaked $name $digest $at"
    fi
done
"""
# Every real or fake secret is longer: a shorter needle would match by chance, or was cut.
MIN_NEEDLE = 16


@dataclass(frozen=True)
class Leak:
    """Where a secret was found in a haystack: what a failure can say without the secret."""

    name: str
    """The secret file's name."""
    digest: str
    """The first 12 hex digits of the needle's SHA-256 (`sha256sum` of the file's first base64
    line, or of the whole file without its final newline, tells which secret it was)."""
    offsets: tuple[int, ...]
    """Byte offsets in the haystack of its first occurrences (up to three)."""
    haystack: bytes = field(repr=False)

    def __str__(self) -> str:
        places = ", ".join(self._place(offset) for offset in self.offsets)
        return f"{self.name} (sha256 {self.digest}...) at {places}"

    def _place(self, offset: int) -> str:
        """The offset's line and column, and the last JSON key before it on its line (`docker
        inspect` is one line): names of the haystack's structure, no value."""
        start = self.haystack.rfind(b"\n", 0, offset) + 1
        line = self.haystack.count(b"\n", 0, offset) + 1
        keys = re.findall(
            r'"([A-Za-z0-9_.-]+)":', self.haystack[start:offset].decode(errors="replace")
        )
        within = f", after JSON key {keys[-1]!r}" if keys else ""
        return f"byte {offset} (line {line}, column {offset - start + 1}{within})"


def leaked(host: Any, files: list[str], haystack: str) -> list[Leak]:
    """The secrets of the files (readable in `host`) that occur in `haystack`, with where.

    Fails when a secret could not be read or gave no needle. Neither the haystack (it is
    what is searched for secrets) nor a needle is ever part of a failure message.
    """
    path = f"/tmp/e2e-haystack-{uuid.uuid4().hex}"  # the reader's own tmpfs
    written = host.run("printf '%%s' %s > %s", haystack, path).rc == 0
    assert written, "could not write the haystack into the reader's /tmp"
    result = host.run("sh -c %s find-secrets" + " %s" * (len(files) + 1), _FIND, path, *files)
    searched = result.rc == 0  # stderr holds only file names and shell errors
    assert searched, f"the secret search failed (exit {result.rc}): {result.stderr.strip()[-300:]}"
    lengths = {}
    found = []
    for line in result.stdout.splitlines():
        word, name, *rest = line.split()
        if word == "checked":
            lengths[name] = int(rest[0])
        elif word == "leaked":
            digest, *offsets = rest
            found.append(Leak(name, digest, tuple(map(int, offsets)), haystack.encode()))
    names = [f.rsplit("/", 1)[1] for f in files]
    assert sorted(lengths) == sorted(names), f"not every secret was searched for: {lengths}"
    short = sorted(name for name, length in lengths.items() if length < MIN_NEEDLE)
    assert short == [], f"needles shorter than {MIN_NEEDLE} characters from {short}"
    return found


def haystacks(stack: Stack, role: str, client: docker.DockerClient) -> dict[str, str]:
    """Everything about a container that an operator or attacker can read: from the engine,
    and from its process while it runs (the rotation pass runs only under scripts/rotate.sh;
    its environment and argv are in docker inspect)."""
    name = stack.object(role)
    info = client.api.inspect_container(name)
    image = info["Image"]
    found = {
        "docker inspect": json.dumps(info),
        "docker image inspect": json.dumps(client.api.inspect_image(image)),
        "docker history": docker_cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", image),
        "docker logs": client.api.logs(name, tail=500).decode(errors="replace"),
    }
    if info["State"]["Running"]:
        inside = container_host(name)
        found["/proc/1/environ"] = _text(inside.file("/proc/1/environ").content)
        found["/proc/1/cmdline"] = _text(inside.file("/proc/1/cmdline").content)
    return found


def _text(raw: bytes) -> str:
    return bytes(raw).replace(b"\0", b"\n").decode(errors="replace")


@pytest.fixture(scope="module")
def readers(stack: Stack, probe: ProbeContainer, rotation_probe: ProbeContainer) -> dict[str, Any]:
    """Where each material's secrets can be read: Redis' own container; the app's probe; the
    rotation pass's probe (its image, uid and material)."""
    return {
        "redis": container_host(stack.redis),
        "app": probe.host,
        "rotation": rotation_probe.host,
    }


@pytest.mark.parametrize("owner", ["redis", "app", "rotation"])
@pytest.mark.parametrize("observed", ["redis", "app", "rotation"])
def test_secrets__appear_nowhere_outside_the_material_files(
    stack: Stack,
    docker_client: docker.DockerClient,
    readers: dict[str, Any],
    owner: str,
    observed: str,
) -> None:
    files = [f"{MATERIAL[owner]}/{name}" for name in SECRET_FILES[owner]]
    found = [
        f"in {where}: {hit}"
        for where, text in haystacks(stack, observed, docker_client).items()
        for hit in leaked(readers[owner], files, text)
    ]
    assert found == [], f"secrets of {owner} visible in {observed}: " + "; ".join(found)


@pytest.mark.parametrize("kind", ["password", "data-key", "pem-key"])
def test_secrets__leak_check_finds_a_planted_secret(readers: dict[str, Any], kind: str) -> None:
    """Positive control with throwaway values: the same check reports a password, a data key
    and a PEM private key when they are in a haystack (and only the one that is)."""
    fakes = {
        "password": "Zq8" * 8,
        "data-key": base64.b64encode(b"k" * 32).decode(),
        "pem-key": pki.generate_private_key("ecdsa-p256").decode(),
    }
    host = readers["app"]
    for name, text in fakes.items():
        assert host.run("printf '%%s' %s > /tmp/fake-%s", text, name).rc == 0
    hits = leaked(host, [f"/tmp/fake-{n}" for n in fakes], f"x={fakes[kind]} y")
    assert [hit.name for hit in hits] == [f"fake-{kind}"]


class _Interleaved:
    """A reader on which a whole other search runs right after the first command (the
    haystack's write): what a second pytest-xdist worker does on the shared Redis container."""

    def __init__(self, host: Any, other: Callable[[], None]) -> None:
        self.host = host
        self.other: Callable[[], None] | None = other

    def run(self, command: str, *args: str) -> Any:
        result = self.host.run(command, *args)
        if self.other is not None:
            other, self.other = self.other, None
            other()
        return result


def test_secrets__two_searches_on_one_reader_keep_their_own_haystacks(
    readers: dict[str, Any],
) -> None:
    """Two searches on one reader at once (pytest-xdist's workers on Redis' container): each
    searches its own haystack. With one fixed path the other's trap removed it: "the secret
    search failed (exit 2): no haystack" (s42, -n 2, [app-redis])."""
    host = readers["app"]
    fake = "Zq8" * 8
    assert host.run("printf '%%s' %s > /tmp/fake-side", fake).rc == 0
    files = ["/tmp/fake-side"]
    inner: list[list[Leak]] = []
    between = _Interleaved(host, lambda: inner.append(leaked(host, files, "nothing here")))
    outer = leaked(between, files, f"a {fake} b")
    assert [hit.name for hit in outer] == ["fake-side"]
    assert inner == [[]]
    host.run("rm -f /tmp/fake-side")


def test_secrets__a_leak_says_where_and_which_without_the_secret(readers: dict[str, Any]) -> None:
    """A failure names the haystack's byte, line and column, the JSON key before it and the
    needle's hash prefix: enough to find it, nothing of the secret."""
    host = readers["app"]
    fake = "Zq8" * 8
    assert host.run("printf '%%s' %s > /tmp/fake-where", fake).rc == 0
    haystack = f'{{"Config": {{"Env": ["A=1", "P={fake}"]}}}}\nsecond {fake}'
    (hit,) = leaked(host, ["/tmp/fake-where"], haystack)
    host.run("rm -f /tmp/fake-where")
    first, second = haystack.index(fake), haystack.rindex(fake)
    digest = hashlib.sha256(fake.encode()).hexdigest()[:12]
    assert str(hit) == (
        f"fake-where (sha256 {digest}...) at byte {first} (line 1, column {first + 1}, "
        f"after JSON key 'Env'), byte {second} (line 2, column 8)"
    )
    assert fake not in str(hit)
    assert fake not in repr(hit)


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("rm -f /tmp/fake-absent", "missing, unreadable or empty"),
        (": > /tmp/fake-absent", "missing, unreadable or empty"),
        ("printf '%s' '-----BEGIN PRIVATE KEY-----' > /tmp/fake-absent", "empty needle"),
        ("printf 'x' > /tmp/fake-absent && chmod 000 /tmp/fake-absent", "missing, unreadable"),
    ],
    ids=["missing", "empty", "pem-without-body", "unreadable"],
)
def test_secrets__leak_check_fails_on_a_secret_it_cannot_read(
    readers: dict[str, Any], setup: str, why: str
) -> None:
    """Negative control: a secret file that is missing, empty, unreadable or yields no needle
    is an error of the check, never "not leaked"."""
    host = readers["app"]
    assert host.run(setup).rc == 0
    with pytest.raises(AssertionError, match=f"the secret search failed .*fake-absent: {why}"):
        leaked(host, ["/tmp/fake-absent"], "any haystack")
    host.run("rm -f /tmp/fake-absent")


@pytest.fixture(scope="module")
def material_hosts(stack: Stack, rotation_probe: ProbeContainer) -> dict[str, Any]:
    """Where each material volume can be looked at as its owner: the running container, or
    for the rotation pass (stopped between runs) a probe with its image, uid and volume."""
    hosts = {
        role: container_host(stack.object(role)) for role in ("redis", "app", "redis-exporter")
    }
    return {**hosts, "rotation": rotation_probe.host}


@pytest.mark.parametrize("role", MATERIAL_OWNERS)
def test_secrets__material_modes_and_owner(
    stack: Stack, material_hosts: dict[str, Any], role: str
) -> None:
    entries = stat_dir(material_hosts[role], MATERIAL[role])
    owner = uid_of(stack, role)
    mode, uid, gid = entries.pop(".")
    assert (mode, uid, gid) == (0o700, owner, owner), (
        f"{MATERIAL[role]}: mode {mode:04o} owner {uid}:{gid}, want 0700 {owner}:{owner}"
    )
    for name, (mode, uid, _gid) in entries.items():
        assert uid == owner, f"{name} owned by {uid}"
        assert mode & 0o222 == 0, f"{name} is writable ({oct(mode)})"
        # The previous data keys and API tokens are secrets that are empty while no rotation
        # is under way (so not in SECRET_FILES, whose contents the leak scan looks for).
        if name in SECRET_FILES[role] or name in (
            "users.acl",
            "data.previous-keys",
            "api.previous-tokens",
        ):
            assert mode == 0o400, f"{name}: {oct(mode)}"
        else:  # certificates and redis.conf: public, but nobody may change them
            assert mode == 0o444, f"{name}: {oct(mode)}"


@pytest.mark.parametrize("role", MATERIAL_OWNERS)
def test_secrets__no_ca_private_key_is_delivered(material_hosts: dict[str, Any], role: str) -> None:
    host = material_hosts[role]
    keys = {n for n in host.file(MATERIAL[role]).listdir() if n.endswith(".key")}
    assert keys == {n for n in SECRET_FILES[role] if n.endswith(".key")}, "only leaf keys"


@pytest.mark.parametrize("role", ["redis", "app"])
def test_secrets__no_private_key_in_the_image(
    stack: Stack, docker_client: docker.DockerClient, role: str
) -> None:
    """The image alone (no material volume mounted) holds no private key anywhere."""
    image = docker_client.api.inspect_container(stack.object(role))["Image"]
    output = docker_client.containers.run(
        image,
        entrypoint=["sh", "-c"],
        command=[
            # A PEM block's own line (-x), not source code that mentions the marker.
            "grep -rlIsx -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' --exclude-dir=proc "
            "--exclude-dir=sys --exclude-dir=dev / || true"
        ],
        network_mode="none",
        user="0:0",
        read_only=True,
        cap_drop=["ALL"],
        cap_add=["DAC_READ_SEARCH"],
        labels=probe_labels("image-scan"),
        remove=True,
    )
    assert output.decode().split() == []


@pytest.mark.parametrize("role", MATERIAL_OWNERS)
def test_secrets__the_exited_initialiser_keeps_no_staged_file(
    stack: Stack, docker_client: docker.DockerClient, role: str
) -> None:
    """The init container received every key and password as an upload; once it has moved them
    into the volume, nothing of them remains in its layer (what `docker cp` could read)."""
    init = stack.object(f"{role}-init")
    stream, _ = docker_client.api.get_archive(init, STAGING_DIR)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as staged:
        left = [member.name for member in staged.getmembers() if not member.isdir()]
    assert left == [], f"{init} still holds staged files: {left}"
