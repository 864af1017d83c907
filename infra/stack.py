"""`build_stack(settings)`: the whole program, as one function the engine, tests and
`infra.preview` all call (no module-level resources, no "set mocks, then import")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from infra.applier.state import StateStore
from infra.components import app_image
from infra.components import redis as redis_component
from infra.components.app import AppFiles, CacheApp, CacheAppArgs
from infra.components.exporter import ExporterFiles, RedisExporter, RedisExporterArgs
from infra.components.networks import StackNetworks, StackNetworksArgs
from infra.components.redis import RedisFiles, RedisServer, RedisServerArgs
from infra.components.reload import ReloadFiles
from infra.components.rotation import RotationFiles, RotationPass, RotationPassArgs
from infra.components.secrets import StackSecrets, StackSecretsArgs
from infra.components.tls import TlsMaterial, TlsMaterialArgs
from infra.images import build_input_problem, shown_context
from infra.naming import REDIS_ALIAS, Role, object_name
from infra.providers.secrets import GeneratedPassword, PasswordPhase
from infra.redis_acl import render_acl_file_from_hashes
from infra.security_summary import DeclaredResources, security_summary
from infra.settings import REPO_ROOT, StackSettings


@dataclass(frozen=True)
class BuiltStack:
    networks: StackNetworks
    tls: TlsMaterial
    secrets: StackSecrets
    redis: RedisServer
    app: CacheApp
    exporter: RedisExporter
    rotation: RotationPass
    exports: dict[str, pulumi.Output[Any]]


def image_contexts() -> tuple[Path, ...]:
    """The build context of every image the program declares (Redis's; the app's, which the
    exporter and the rotation pass share). tests/unit/test_stack_build_inputs.py checks it
    against the rendered program."""
    return (redis_component.IMAGE_CONTEXT, app_image.IMAGE_CONTEXT)


def require_build_inputs(stack: str) -> None:
    """What `pulumi up` does before declaring anything: every image's build context holds
    what its Dockerfile copies and the app's wheelhouse is fresh (infra/images.py
    `build_input_problem`, the same check as the local applier's `up`). A stale wheelhouse
    kept the image's tag, so `pulumi up` run by hand kept running the old code, without a
    word. `pulumi preview` only warns, as the applier's `plan` notes it: it builds nothing.
    Raises pulumi.RunError, which the engine prints as one error line, no traceback."""
    for context in image_contexts():
        found = build_input_problem(context, context / "Dockerfile", shown_context(context))
        if found is None:
            continue
        again = (
            f", then pulumi up again (scripts/setup-secure-redis.sh {stack} does both)"
            if found.host_made
            else ""
        )
        line = f"{found.problem}; nothing was deployed. {found.fix}{again}"
        if pulumi.runtime.is_dry_run():
            pulumi.log.warn(f"pulumi up would stop here: {line}")
            return
        raise pulumi.RunError(line)


def require_stack_unlocked(stack: str, project_dir: Path = REPO_ROOT) -> None:
    """What `pulumi up` does before declaring anything, after the build inputs: refuse while
    another command holds the stack's lock (infra/applier/state.py `StateStore.busy`): a
    scripts/rotate.sh run between two of its ups, the local applier's up, down or rekey. The
    rotation's own `pulumi up` runs on its behalf and passes. A hand-run `pulumi up` in the
    middle of a rotation applied what the rotation had set so far and left it to finish on
    top of that; Pulumi's own lock covers one update, not a rotation's several. `pulumi
    preview` changes nothing: it warns with the same words. Raises pulumi.RunError, which the
    engine prints as one error line."""
    refusal = StateStore(project_dir, stack).busy("`pulumi up`")
    if refusal is None:
        return
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(f"pulumi up would stop here: {refusal}")
        return
    raise pulumi.RunError(refusal)


def redis_dns_names(stack: str) -> tuple[str, ...]:
    """Every name the server certificate must carry: the alias clients dial on the backend
    network, the container name (Docker's DNS answers to it too), and localhost."""
    return (REDIS_ALIAS, object_name(stack, Role.REDIS), "localhost")


def redis_url(settings: StackSettings) -> str:
    return f"rediss://{REDIS_ALIAS}:{settings.redis_port}"


def build_stack(settings: StackSettings) -> BuiltStack:
    s = settings
    declared = DeclaredResources()
    declared.watch()
    networks = StackNetworks("networks", StackNetworksArgs(stack=s.stack))
    tls = TlsMaterial(
        "tls",
        TlsMaterialArgs(
            stack=s.stack,
            key_algorithm=s.key_algorithm.value,
            ca_validity_days=s.ca_validity_days,
            cert_validity_days=s.cert_validity_days,
            renew_before_days=s.cert_renew_before_days,
            redis_dns_names=redis_dns_names(s.stack),
            renewal_generation=s.cert_renewal_generation,
            ca_rollover_generation=s.ca_rollover_generation,
        ),
    )
    secrets = StackSecrets(
        "secrets",
        StackSecretsArgs(
            password_length=s.password_length,
            data_key_generation=s.data_key_generation,
            data_key_keep_previous=s.data_key_keep_previous,
            password_rotation_generation=s.password_rotation_generation,
            api_token_rotation_generation=s.api_token_rotation_generation,
            api_token_retire_generation=s.api_token_retire_generation,
        ),
    )
    # Every ACL user's password, in the order render_acl_file_from_hashes takes them.
    acl_passwords = (
        secrets.app_password,
        secrets.healthcheck_password,
        secrets.reload_password,
        secrets.exporter_password,
        secrets.rotation_password,
    )
    # Every hash each user may authenticate with: two while its password rotates.
    acl = pulumi.Output.all(*(password.aclHashes for password in acl_passwords)).apply(
        lambda hashes: render_acl_file_from_hashes(
            app_password_hash=hashes[0],
            healthcheck_password_hash=hashes[1],
            reload_password_hash=hashes[2],
            exporter_password_hash=hashes[3],
            rotation_password_hash=hashes[4],
            key_prefix=s.key_prefix,
        )
    )
    trust_bundle = tls.ca.trustBundlePem
    redis = RedisServer(
        "redis",
        RedisServerArgs(
            stack=s.stack,
            id_slot=s.runtime_id_slot,
            backend_network=networks.backend_name,
            port=s.redis_port,
            tls_protocols=s.tls_protocols,
            memory_mb=s.redis_memory_mb,
            maxmemory_mb=s.redis_maxmemory_mb,
            cpus=s.redis_cpus,
            files=RedisFiles(
                ca_cert=trust_bundle,
                server_cert=tls.redis_server.certPem,
                server_key=tls.redis_server.keyPem,
                healthcheck_cert=tls.healthcheck_client.certPem,
                healthcheck_key=tls.healthcheck_client.keyPem,
                healthcheck_password=secrets.healthcheck_password.stable,
                acl=acl,
            ),
            revisions=(
                tls.redis_server.revision,
                tls.healthcheck_client.revision,
                secrets.healthcheck_password.revision,
            ),
            reload_files=ReloadFiles(
                ca_cert=trust_bundle,
                client_cert=tls.reload_client.certPem,
                client_key=tls.reload_client.keyPem,
                password=secrets.reload_password.stable,
                # A state from before `retired` existed has none: "".
                retired_password=secrets.reload_password.retired.apply(lambda r: r or ""),
                # A state from before the reload leaf kept its previous pair has none: "".
                previous_cert=tls.reload_client.previousCertPem.apply(lambda c: c or ""),
                previous_key=tls.reload_client.previousKeyPem.apply(lambda k: k or ""),
            ),
            reload_revisions=(tls.reload_client.revision, secrets.reload_password.revision),
            depends_on=(networks.backend,),
        ),
    )
    app = CacheApp(
        "app",
        CacheAppArgs(
            stack=s.stack,
            id_slot=s.runtime_id_slot,
            environment=s.environment.value,
            backend_network=networks.backend_name,
            frontend_network=networks.frontend_name,
            redis_url=redis_url(s),
            key_prefix=s.key_prefix,
            host_port=s.app_host_port,
            memory_mb=s.app_memory_mb,
            cpus=s.app_cpus,
            files=AppFiles(
                ca_cert=trust_bundle,
                client_cert=tls.app_client.certPem,
                client_key=tls.app_client.keyPem,
                password=secrets.app_password.value,
                data_key=secrets.data_keyring.primaryKey,
                previous_data_keys=secrets.data_keyring.previousKeys,
                api_token=secrets.api_token.value,
                previous_api_tokens=secrets.api_token.previous,
                data_key_generation=str(s.data_key_generation),
            ),
            revisions=(
                tls.app_client.revision,
                secrets.app_password.revision,
                secrets.data_keyring.revision,
                secrets.api_token.revision,
            ),
            # The app starts once Redis is healthy (`wait`), so its first connection succeeds.
            depends_on=(networks.backend, networks.frontend, redis.container),
            # Its files change only once Redis trusts and accepts what they hold.
            material_after=(redis.reload,),
        ),
    )
    exporter = RedisExporter(
        "exporter",
        RedisExporterArgs(
            stack=s.stack,
            id_slot=s.runtime_id_slot,
            environment=s.environment.value,
            backend_network=networks.backend_name,
            frontend_network=networks.frontend_name,
            redis_url=redis_url(s),
            files=ExporterFiles(
                ca_cert=trust_bundle,
                client_cert=tls.exporter_client.certPem,
                client_key=tls.exporter_client.keyPem,
                password=secrets.exporter_password.value,
                # Public certificates only, watched for expiry (infra/components/exporter.py).
                watched_certs={
                    "healthcheck": tls.healthcheck_client.certPem,
                    "reload": tls.reload_client.certPem,
                    "rotation": tls.rotation_client.certPem,
                },
                passwords_rotating=passwords_rotating(acl_passwords),
            ),
            revisions=(tls.exporter_client.revision, secrets.exporter_password.revision),
            depends_on=(networks.backend, networks.frontend, redis.container),
            # Like the app's: its files change only once Redis trusts and accepts them.
            material_after=(redis.reload,),
        ),
    )
    # The data-key rotation pass, under its own ACL user (the app's has no WATCH): declared
    # stopped, run by scripts/rotate.sh (infra/components/rotation.py).
    rotation = RotationPass(
        "rotation",
        RotationPassArgs(
            stack=s.stack,
            id_slot=s.runtime_id_slot,
            environment=s.environment.value,
            backend_network=networks.backend_name,
            redis_url=redis_url(s),
            key_prefix=s.key_prefix,
            files=RotationFiles(
                ca_cert=trust_bundle,
                client_cert=tls.rotation_client.certPem,
                client_key=tls.rotation_client.keyPem,
                password=secrets.rotation_password.value,
                data_key=secrets.data_keyring.primaryKey,
                previous_data_keys=secrets.data_keyring.previousKeys,
            ),
            revisions=(
                tls.rotation_client.revision,
                secrets.rotation_password.revision,
                secrets.data_keyring.revision,
            ),
            depends_on=(networks.backend, redis.container),
            material_after=(redis.reload,),
        ),
    )
    exports = _exports(s, networks, tls, redis, app, exporter, rotation, declared)
    return BuiltStack(networks, tls, secrets, redis, app, exporter, rotation, exports)


def passwords_rotating(passwords: tuple[GeneratedPassword, ...]) -> pulumi.Output[str]:
    """How many of `passwords` are in their ROTATE phase (old and new accepted), as a file's
    content: the exporter reports it (infra/components/exporter.py), so a rotation left half
    done raises PasswordRotationUnfinished. The phase is not secret; the count says nothing
    about any password."""
    return pulumi.Output.all(*(password.phase for password in passwords)).apply(
        lambda phases: f"{sum(phase == PasswordPhase.ROTATING.value for phase in phases)}\n"
    )


def _exports(
    s: StackSettings,
    networks: StackNetworks,
    tls: TlsMaterial,
    redis: RedisServer,
    app: CacheApp,
    exporter: RedisExporter,
    rotation: RotationPass,
    declared: DeclaredResources,
) -> dict[str, pulumi.Output[Any]]:
    """Stack outputs. None is secret; secrets are never exported."""
    expiry = pulumi.Output.all(
        ca=tls.ca.notAfter,
        redisServer=tls.redis_server.notAfter,
        appClient=tls.app_client.notAfter,
        healthcheckClient=tls.healthcheck_client.notAfter,
        reloadClient=tls.reload_client.notAfter,
        exporterClient=tls.exporter_client.notAfter,
        rotationClient=tls.rotation_client.notAfter,
    )
    # What the resources declare (infra/security_summary.py), with the settings they came from.
    summary = security_summary(declared, redis.container).apply(
        lambda declared_facts: {
            "environment": s.environment.value,
            "passwordLength": s.password_length,
            "dataKeyGeneration": s.data_key_generation,
            "certRenewalGeneration": s.cert_renewal_generation,
            "caRolloverGeneration": s.ca_rollover_generation,
            "passwordRotationGeneration": s.password_rotation_generation,
            "apiTokenRotationGeneration": s.api_token_rotation_generation,
            "apiTokenRetireGeneration": s.api_token_retire_generation,
            **declared_facts,
        }
    )
    plain: dict[str, Any] = {
        "backendNetwork": networks.backend_name,
        "frontendNetwork": networks.frontend_name,
        "redisContainer": redis.container_name,
        "appContainer": app.container_name,
        "exporterContainer": exporter.container_name,
        "rotationContainer": rotation.container_name,
        "redisEndpoint": redis_url(s),
        "appUrl": f"http://127.0.0.1:{s.app_host_port}/",
        "securitySummary": summary,
    }
    exports = {k: pulumi.Output.from_input(v) for k, v in plain.items()}
    exports["caCertificate"] = tls.ca.certPem
    exports["certificateExpiry"] = expiry
    return exports


__all__ = [
    "BuiltStack",
    "build_stack",
    "image_contexts",
    "passwords_rotating",
    "redis_dns_names",
    "redis_url",
    "require_build_inputs",
]
