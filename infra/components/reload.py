"""Redis reloads rotated material in place: two one-shot jobs, never a restart.

Rotation rewrites Redis's material volume (infra/components/material.py); a running Redis has
its TLS context and users in memory, so it must be told to read them again:
- `CONFIG SET tls-cert-file ... tls-key-file ... tls-ca-cert-file ...` with the same paths
  reloads certificate, key and CA bundle (redis/redis#8756): new connections get the new
  material, established ones keep theirs;
- `ACL LOAD` re-reads the ACL file. Redis 7.0 then closes the connections of every user the
  file defines (clients reconnect; the app's client does), so it runs only when the ACL file
  changed.
Each job is a container whose label is the hash of exactly what it reloads, so any engine
replaces (re-runs) it exactly when that content changed, after the material volume was
rewritten. It connects as the `reload` ACL user (infra/redis_acl.py: those two commands and
nothing else) with its own client certificate and password, from its own material volume
(the job never sees the server's key), on the backend network only, hardened like every
container (read-only root, no capabilities, no-new-privileges, non-root, memory limit).

Each job has a second try for the step before it that never reached Redis (its reload failed:
Redis at maxclients, the job interrupted), which the next `up`'s material assumes it did: the
password a SET dropped (Redis answered NOAUTH), and the certificate a CA promote replaced
(Redis closed the connection: it still trusts only the old CA). reload_script says how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.components.docker_objects import container_labels, named_options
from infra.components.hardening import hardened_job
from infra.components.material import (
    ClientIdentityFiles,
    MaterialFile,
    MaterialVolume,
    MaterialVolumeArgs,
    revision_hash,
)
from infra.naming import MATERIAL_LABEL, Role, object_name
from infra.redis_acl import RELOAD_USER

RELOAD_CONSUMER: Final = "reload"
JOB_MEMORY_MB: Final = 32
JOB_CPUS: Final = 0.25
RELOAD_TLS_WORDS: Final = ("CONFIG", "SET")
RELOAD_ACL_WORDS: Final = ("ACL", "LOAD")
# What redis-cli (Debian's 7.0) says when Redis refused its client certificate: under TLS 1.2
# inside SSL_connect, with the server's alert; under TLS 1.3 (the stack's protocol) the server
# checks the certificate after the client's handshake is done, so the refusal shows as the
# connection reset or closed at the first read (tests/integration/test_redis_rotation.py has
# both on a real redis-server). "Could not connect" alone (refused, timed out, no such host)
# and "certificate verify failed" (Redis's certificate not trusted here) are not among them.
REFUSED_AT_HANDSHAKE: Final = (
    "alert unknown ca",
    "alert bad certificate",
    "I/O error",
    "Connection reset by peer",
    "Server closed the connection",
)


# The reload identity's passwords in its volume: the one to use, and the second try.
PASSWORD_FILE: Final = "reload.password"  # noqa: S105 - a file name
RETIRED_PASSWORD_FILE: Final = "reload.retired-password"  # noqa: S105 - a file name
# Its certificates: the one to use, and the one the last CA promote replaced ("" when none).
CERT_FILE: Final = "reload.crt"
KEY_FILE: Final = "reload.key"
PREVIOUS_CERT_FILE: Final = "reload.previous.crt"
PREVIOUS_KEY_FILE: Final = "reload.previous.key"


@dataclass(frozen=True, kw_only=True)
class ReloadFiles(ClientIdentityFiles):
    """`password` is the one Redis accepts both before and after this `up`'s ACL reload
    (`stable`); `retired_password` the one the last password SET dropped ("" when none), tried
    when Redis refuses `password` (reload_script says when). `previous_cert`/`previous_key`
    are the pair the last CA promote replaced, while the old CA is still trusted ("" when
    none: infra/providers/certificates.py), tried when Redis gives no answer to the current
    certificate's connection."""

    retired_password: pulumi.Input[str] = ""
    previous_cert: pulumi.Input[str] = ""
    previous_key: pulumi.Input[str] = ""


@dataclass(frozen=True)
class RedisReloadArgs:
    stack: str
    image: pulumi.Input[str]
    uid: int
    nproc: int
    """The nproc ulimit of `uid` (the job runs as Redis's uid, so it is Redis's bound)."""
    material_dir: str
    """Where the job mounts its own volume: the image's directory owned by `uid`."""
    host: str
    port: int
    backend_network: str
    tls_files: tuple[str, str, str]
    """Paths of the server's certificate, key and CA bundle, as Redis was configured."""
    files: ReloadFiles
    revisions: tuple[pulumi.Input[str], ...]
    tls_content: tuple[pulumi.Input[str], ...]
    """Public content whose change needs a TLS reload (server certificate, CA bundle)."""
    acl_content: pulumi.Input[str]
    depends_on: tuple[pulumi.Resource, ...] = ()


def reload_script(material_dir: str, host: str, port: int) -> str:
    """sh script: "$@" is the Redis command. The server is named by a `rediss://` URL (what
    policies recognise a Redis client by) and verified against the CA bundle; the user comes
    after the URL because redis-cli ignores REDISCLI_AUTH for a URL that names one. The
    password goes from its file into REDISCLI_AUTH, never onto argv. redis-cli exits 0 on an
    error reply, so the reply itself is checked: anything but OK fails the job (and the `up`).

    When Redis refuses the password (the command then answers NOAUTH), the command is sent once
    more with the retired one, if there is one: a password SET is recorded whether or not the
    ROTATE before it reached Redis, and when that ROTATE's ACL LOAD failed Redis still holds
    only the password the SET dropped (infra/providers/secrets.py). Any other answer is not
    retried.

    When Redis refuses the current certificate at the handshake and the volume holds the
    certificate the last CA promote replaced, the same is done once more with that
    certificate: a promote is recorded whether or not the introduce before it reached Redis,
    and when that introduce's TLS reload failed Redis trusts only the old CA, which issued that
    certificate. The CONFIG SET then makes Redis trust both, as the introduce should have. Only
    during a promote (until the retire step) is there such a certificate
    (infra/providers/certificates.py). The refusal is told from redis-cli's own words
    (REFUSED_AT_HANDSHAKE); any other failure without an answer (Redis not reachable, its
    certificate not verified, a file missing) fails the job with redis-cli's error, untried."""
    d = material_dir
    cli = (
        f'redis-cli --tls --cacert {d}/ca.crt --cert "$crt" --key "$key" '
        f"-u rediss://{host}:{port} --user {RELOAD_USER} --no-auth-warning"
    )
    retired = f"{d}/{RETIRED_PASSWORD_FILE}"
    refused = "|".join(f'*"{words}"*' for words in REFUSED_AT_HANDSHAKE)
    # `attempt CERT KEY COMMAND...` leaves Redis's answer in $out, or fails with redis-cli's
    # status when there was none, its error then in $out (printed by `failed`): redis-cli's
    # errors are read with its answer, so NOAUTH may follow its "AUTH failed" line. set -e
    # does not apply inside a function called from `||`, hence each `|| return`.
    return (
        f'send() {{ REDISCLI_AUTH="$(cat "$1")" || return; export REDISCLI_AUTH; shift; '
        f'{cli} "$@" 2>&1; }}; '
        "attempt() { crt=$1; key=$2; shift 2; "
        f'out=$(send {d}/{PASSWORD_FILE} "$@") || return; '
        f'case "$out" in *NOAUTH*) if [ -s {retired} ]; then '
        'echo "redis-reload: Redis refused the current password: the ACL reload of the '
        "rotation step before this one did not take; trying the password that step "
        'replaced" >&2; '
        f'out=$(send {retired} "$@") || return; fi ;; esac; }}; '
        'failed() { rc=$?; printf "%s\\n" "$out" >&2; return "$rc"; }; '
        f'rc=0; out=; attempt {d}/{CERT_FILE} {d}/{KEY_FILE} "$@" || failed || rc=$?; '
        'if [ "$rc" != 0 ]; then '
        f'case "$out" in {refused}) ;; *) exit "$rc" ;; esac; '
        f'if [ ! -s {d}/{PREVIOUS_CERT_FILE} ]; then exit "$rc"; fi; '
        'echo "redis-reload: Redis refused the current certificate at the handshake: the TLS '
        "reload of the CA rollover's introduce step may not have taken (Redis then trusts "
        'only the old CA); trying the certificate the promote replaced" >&2; '
        f'attempt {d}/{PREVIOUS_CERT_FILE} {d}/{PREVIOUS_KEY_FILE} "$@" || failed; fi; '
        'if [ "$out" != OK ]; then echo "redis-reload: $1 $2 answered: $out" >&2; exit 1; fi; '
        'echo "redis-reload: $1 $2 OK"'
    )


def tls_reload_command(cert_file: str, key_file: str, ca_file: str) -> list[str]:
    """One CONFIG SET of all three: Redis builds the new TLS context from them at once."""
    return [
        *RELOAD_TLS_WORDS,
        "tls-cert-file",
        cert_file,
        "tls-key-file",
        key_file,
        "tls-ca-cert-file",
        ca_file,
    ]


def job_healthcheck_test(material_dir: str) -> list[str]:
    """Healthy while its credentials are readable. The job usually exits before the first
    probe; the check keeps it under the same rules as any container."""
    return ["CMD-SHELL", f"test -r {material_dir}/{KEY_FILE}"]


class RedisReload(pulumi.ComponentResource):
    material: MaterialVolume
    tls_job: docker.Container
    acl_job: docker.Container

    def __init__(
        self, name: str, args: RedisReloadArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:RedisReload", name, None, opts)
        self._prefix = name
        files = args.files
        self.material = MaterialVolume(
            f"{name}-material",
            MaterialVolumeArgs(
                stack=args.stack,
                consumer=RELOAD_CONSUMER,
                image=args.image,
                uid=args.uid,
                mount_path=args.material_dir,
                files=(
                    *files.identity_files("reload", auth_file=PASSWORD_FILE),
                    MaterialFile(RETIRED_PASSWORD_FILE, files.retired_password, secret=True),
                    MaterialFile(PREVIOUS_CERT_FILE, files.previous_cert, secret=False),
                    MaterialFile(PREVIOUS_KEY_FILE, files.previous_key, secret=True),
                ),
                revisions=args.revisions,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        after = [self.material, *args.depends_on]
        self.tls_job = self._job(
            args, "tls", tls_reload_command(*args.tls_files), args.tls_content, after
        )
        # ACL LOAD closes the connections of every user the file defines, `reload` included:
        # run beside the TLS job (engines run independent resources at once), it can close
        # that job's connection between its AUTH and its CONFIG SET, which then fails the up.
        # So the TLS reload goes first, as a declared dependency (an order of registration
        # holds for no engine).
        self.acl_job = self._job(
            args, "acl", list(RELOAD_ACL_WORDS), (args.acl_content,), [*after, self.tls_job]
        )
        self.register_outputs({})

    def _job(
        self,
        args: RedisReloadArgs,
        what: str,
        command: list[str],
        content: Sequence[pulumi.Input[str]],
        after: list[pulumi.Resource],
    ) -> docker.Container:
        revision = pulumi.Output.all(*content).apply(revision_hash)
        return docker.Container(
            f"{self._prefix}-{what}",
            name=object_name(args.stack, f"{RELOAD_CONSUMER}-{what}"),
            image=args.image,
            entrypoints=[
                "sh",
                "-euc",
                reload_script(args.material_dir, args.host, args.port),
                "redis-reload",
            ],
            command=command,
            mounts=[
                docker.ContainerMountArgs(
                    type="volume",
                    source=self.material.volume_name,
                    target=args.material_dir,
                    read_only=True,
                )
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.backend_network)],
            # Runs once to completion; a failed reload fails the `up` that needed it.
            attach=True,
            **hardened_job(
                uid=args.uid,
                memory_mb=JOB_MEMORY_MB,
                cpus=JOB_CPUS,
                nproc=args.nproc,
                healthcheck=job_healthcheck_test(args.material_dir),
            ),
            labels=container_labels(args.stack, Role.DATA, {MATERIAL_LABEL: revision}),
            opts=named_options(self, depends_on=after),
        )


__all__ = [
    "CERT_FILE",
    "JOB_MEMORY_MB",
    "KEY_FILE",
    "PASSWORD_FILE",
    "PREVIOUS_CERT_FILE",
    "PREVIOUS_KEY_FILE",
    "REFUSED_AT_HANDSHAKE",
    "RELOAD_ACL_WORDS",
    "RELOAD_CONSUMER",
    "RELOAD_TLS_WORDS",
    "RETIRED_PASSWORD_FILE",
    "RedisReload",
    "RedisReloadArgs",
    "ReloadFiles",
    "job_healthcheck_test",
    "reload_script",
    "tls_reload_command",
]
