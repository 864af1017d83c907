"""Secret material: delivered only as files, never leaked into plain values.

See docs/design.md#material-delivery.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.naming import Role
from infra.proppath import format_path, string_leaves
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, VOLUME
from infra.render import REDACTED, RenderedStack
from infra.runtime_ids import runtime_id
from tests.unit.conftest import container, labels, uploads

SECRET_FILES = {
    "redis-init": {"server.key", "healthcheck.key", "healthcheck.password"},
    "app-init": {
        "app.key",
        "redis.password",
        "data.key",
        "data.previous-keys",
        "api.token",
        "api.previous-tokens",
    },
}
PUBLIC_FILES = {
    "redis-init": {"redis.conf", "ca.crt", "server.crt", "healthcheck.crt"},
    "app-init": {"ca.crt", "app.crt"},
}
INIT_ROLES = tuple(SECRET_FILES)


def _secrets(stack: RenderedStack) -> set[str]:
    """Every secret string the stack holds (keys, passwords, data keys), non-empty.

    Whole secret lists (an init container's `uploads` output, which also holds certificates)
    are skipped: their secret leaves are already among the secret input paths.
    """
    values: set[str] = set()
    for resource in stack.resources:
        for value in resource.secret_values():
            if isinstance(value, str):
                # A keyring's previousKeys is a comma-separated list of keys.
                values.update(v for v in value.split(",") if v)
    # 4 private keys (CA, server, 2 clients), 2 passwords, 1 data key.
    assert len(values) >= 7, f"expected the generated secrets, found {len(values)}"
    return values


def _assert_no_secret_in(stack: RenderedStack, where: str, tree: Any) -> None:
    secrets = _secrets(stack)
    for path, text in string_leaves(tree):
        for secret in secrets:
            assert secret not in text, f"{where} {format_path(path)} contains a secret value"


# --- delivery (docs/design.md) ----------------------------------------------------------------


@pytest.mark.parametrize("role", INIT_ROLES)
def test_init_container__is_a_one_shot_initialiser(stack: RenderedStack, role: str) -> None:
    props = container(stack, role).props
    assert props["attach"] is True, "must run to completion"
    assert props["mustRun"] is False, "must not be required to keep running"
    assert props["restart"] == "no", "must not be restarted"
    assert props["networkMode"] == "none", "needs no network"
    assert not props.get("ports"), "publishes no port"


@pytest.mark.parametrize("role", INIT_ROLES)
def test_init_container__marks_uploads_secret_in_state(stack: RenderedStack, role: str) -> None:
    init = container(stack, role)
    assert "uploads" in init.options["additionalSecretOutputs"], (
        f"{init.urn}: uploads carry private keys; list them in additionalSecretOutputs"
    )


@pytest.mark.parametrize("role", INIT_ROLES)
def test_init_container__secret_files_are_secret_outputs(stack: RenderedStack, role: str) -> None:
    init = container(stack, role)
    files = [u["file"].rsplit("/", 1)[-1] for u in init.props["uploads"]]
    secret = {
        files[int(p[1])] for p in init.secret_paths if p[0] == "uploads" and p[2] == "content"
    }
    assert secret == SECRET_FILES[role], f"{init.urn}: secret uploads {secret}"


@pytest.mark.parametrize("role", INIT_ROLES)
def test_init_container__keys_and_secrets_are_mode_0400(stack: RenderedStack, role: str) -> None:
    found = uploads(container(stack, role))
    for name in SECRET_FILES[role]:
        assert found[name]["permissions"] == "0400", f"{name} must be 0400"


@pytest.mark.parametrize("role", INIT_ROLES)
def test_init_container__certificates_are_mode_0444(stack: RenderedStack, role: str) -> None:
    found = uploads(container(stack, role))
    for name in PUBLIC_FILES[role]:
        assert found[name]["permissions"] == "0444", f"{name} must be 0444"


def test_acl_file__is_readable_but_mode_0400(stack: RenderedStack) -> None:
    init = container(stack, "redis-init")
    acl = uploads(init)["users.acl"]
    assert acl["permissions"] == "0400"
    index = init.props["uploads"].index(acl)
    assert ("uploads", index, "content") not in init.secret_paths, "hashes are not secret"


@pytest.mark.parametrize(("role", "owner"), [("redis-init", Role.REDIS), ("app-init", Role.APP)])
def test_init_container__files_belong_to_the_consumer(
    stack: RenderedStack, role: str, owner: Role
) -> None:
    uid = str(runtime_id(stack.stack, owner))
    for name, upload in uploads(container(stack, role)).items():
        assert (upload["owner"], upload["group"]) == (uid, uid), f"{name} owner"


@pytest.mark.parametrize(
    "name",
    ["REDIS_PASSWORD", "REDIS_ENCRYPTION_KEY", "REDIS_ENCRYPTION_PREVIOUS_KEYS", "HTTP_API_TOKEN"],
)
def test_app__gets_secrets_only_as_file_references(stack: RenderedStack, name: str) -> None:
    envs = dict(e.split("=", 1) for e in container(stack, "app").props["envs"])
    assert name not in envs, f"{name} must not be set; use {name}_FILE"
    assert envs[f"{name}_FILE"].startswith("/etc/secure-cache/"), f"{name}_FILE"


def test_app__configuration_is_complete(stack: RenderedStack) -> None:
    envs = dict(e.split("=", 1) for e in container(stack, "app").props["envs"])
    expected_env = {"dev": "development", "prod": "production"}[stack.stack]
    assert envs["ENVIRONMENT"] == expected_env
    assert envs["REDIS_URL"] == f"rediss://redis:{stack.settings.redis_port}"
    assert envs["REDIS_USERNAME"] == "app"
    for name in ("REDIS_TLS_CA_CERT", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"):
        assert envs[name].startswith("/etc/secure-cache/")


def test_app_material__delivers_every_referenced_file(stack: RenderedStack) -> None:
    envs = dict(e.split("=", 1) for e in container(stack, "app").props["envs"])
    delivered = set(uploads(container(stack, "app-init")))
    referenced = {v.rsplit("/", 1)[-1] for v in envs.values() if v.startswith("/etc/secure-cache/")}
    assert referenced == delivered


# --- leaks ---------------------------------------------------------------------------------


def test_no_secret__in_plain_props(stack: RenderedStack) -> None:
    for resource in stack.resources:
        record = resource.to_record(redact=True)
        _assert_no_secret_in(stack, resource.urn, record["props"])


def test_no_secret__in_container_envs_or_argv(stack: RenderedStack) -> None:
    for resource in stack.of_type(CONTAINER):
        plain = {
            k: resource.props.get(k) for k in ("envs", "command", "entrypoints", "healthcheck")
        }
        _assert_no_secret_in(stack, resource.urn, plain)


def test_no_secret__in_labels(stack: RenderedStack) -> None:
    for resource in stack.resources:
        if resource.type in (CONTAINER, NETWORK, VOLUME):
            _assert_no_secret_in(stack, f"{resource.urn} labels", labels(resource))


def test_no_secret__in_image_builds(stack: RenderedStack) -> None:
    for image in stack.of_type(IMAGE):
        _assert_no_secret_in(stack, image.urn, image.props)


def test_no_secret__in_non_secret_stack_outputs(stack: RenderedStack) -> None:
    plain = {k: v for k, v in stack.outputs.items() if k not in stack.secret_outputs}
    _assert_no_secret_in(stack, "stack output ", plain)


def test_no_secret__in_the_preview_json(stack: RenderedStack) -> None:
    text = json.dumps(stack.records(redact=True))
    for secret in _secrets(stack):
        assert secret not in text, "a secret value reached the redacted records"


def test_redaction__is_leaf_precise(stack: RenderedStack) -> None:
    """Only the secret file contents are redacted; the rest of each upload stays readable."""
    record = container(stack, "redis-init").to_record(redact=True)
    by_name = {u["file"].rsplit("/", 1)[-1]: u for u in record["props"]["uploads"]}
    assert by_name["server.key"]["content"] == REDACTED
    assert by_name["server.key"]["permissions"] == "0400"
    assert by_name["redis.conf"]["content"].startswith("port 0\n")
    assert by_name["server.crt"]["content"].startswith("-----BEGIN CERTIFICATE-----")


def test_unredacted_record__holds_the_real_values(stack: RenderedStack) -> None:
    record = container(stack, "redis-init").to_record(redact=False)
    key = next(u for u in record["props"]["uploads"] if u["file"].endswith("/server.key"))
    assert "PRIVATE KEY" in key["content"]


def test_stacks__share_no_secret(dev: RenderedStack, prod: RenderedStack) -> None:
    assert not _secrets(dev) & _secrets(prod), "dev and prod must generate their own secrets"
