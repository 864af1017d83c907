"""Rotation as the program declares it (rendered under the mock runtime).

New material must reach Redis and the app by rewriting their material volumes: only the
initialisers and the reload jobs change with it, never the Redis or app containers, so no
engine (Pulumi's or the local applier) replaces or restarts them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pulumi.dynamic import ResourceProvider

from infra import pki
from infra.components.exporter import ROTATING_USERS_FILE
from infra.components.material import revision_hash
from infra.naming import MATERIAL_LABEL, Role
from infra.providers.certificates import KEEPING_SECRET_OUTPUTS, KeepingLeafCertificateProvider
from infra.providers.secrets import GeneratedPasswordProvider, password_outputs
from infra.pulumi_names import CONTAINER
from infra.redis_acl import RELOAD_USER, password_hash
from infra.render import RenderedResource, RenderedStack, render_stack
from infra.secretgen import generate_password
from tests.unit.conftest import container, container_roles, labels, rendered, uploads

# The rotation pass (infra/components/rotation.py) is declared stopped (mustRun false) but is
# a consumer like the app: it reads its volume when started, and new material must not
# replace it.
_PASS = Role.ROTATION.value
CONSUMERS = (*container_roles(one_shot=False), _PASS)
MATERIAL_JOBS = tuple(role for role in container_roles(one_shot=True) if role != _PASS)
INITIALISERS = tuple(role for role in MATERIAL_JOBS if role.endswith("-init"))


@pytest.fixture(scope="module", params=("dev", "prod"))
def two_renders(request: pytest.FixtureRequest) -> tuple[RenderedStack, RenderedStack]:
    """The same stack twice: every certificate, password and key differs between them, as
    after a rotation of everything."""
    stack = str(request.param)
    return rendered(stack), render_stack(stack)


def _content(init: RenderedResource, name: str) -> str:
    return str(uploads(init)[name]["content"])


def _dynamic(stack: RenderedStack, name: str) -> RenderedResource:
    return next(r for r in stack.resources if r.name == name and not r.type.startswith("docker"))


@pytest.mark.parametrize("role", CONSUMERS)
def test_new_material__leaves_the_consumer_declaration_unchanged(
    two_renders: tuple[RenderedStack, RenderedStack], role: str
) -> None:
    first, second = two_renders
    assert _content(container(first, "redis-init"), "server.key") != _content(
        container(second, "redis-init"), "server.key"
    ), "the two renders must differ in material for this test to mean anything"
    assert container(first, role).props == container(second, role).props, (
        f"the {role} container's declaration changed with the material: every engine would "
        "replace (restart) it on a rotation"
    )


@pytest.mark.parametrize("role", CONSUMERS)
def test_consumers__carry_no_material_revision(stack: RenderedStack, role: str) -> None:
    assert MATERIAL_LABEL not in labels(container(stack, role))


@pytest.mark.parametrize("suffix", MATERIAL_JOBS)
def test_new_material__changes_every_initialiser_and_reload_job(
    two_renders: tuple[RenderedStack, RenderedStack], suffix: str
) -> None:
    first, second = two_renders
    before, after = labels(container(first, suffix)), labels(container(second, suffix))
    assert before[MATERIAL_LABEL] != after[MATERIAL_LABEL], (
        f"{suffix}: its declaration must change with the material so any engine re-runs it"
    )


@pytest.mark.parametrize("suffix", INITIALISERS)
def test_initialiser__is_told_its_revision(stack: RenderedStack, suffix: str) -> None:
    init = container(stack, suffix)
    assert init.props["command"][-1] == labels(init)[MATERIAL_LABEL]


def test_reload_jobs__are_labelled_with_exactly_what_they_reload(stack: RenderedStack) -> None:
    redis_init = container(stack, "redis-init")
    tls = labels(container(stack, "reload-tls"))[MATERIAL_LABEL]
    acl = labels(container(stack, "reload-acl"))[MATERIAL_LABEL]
    assert tls == revision_hash(
        [_content(redis_init, "server.crt"), _content(redis_init, "ca.crt")]
    )
    assert acl == revision_hash([_content(redis_init, "users.acl")])


def test_reload_jobs__run_after_redis_and_its_new_files_and_before_the_apps_files(
    stack: RenderedStack,
) -> None:
    redis, redis_init = container(stack, "redis"), container(stack, "redis-init")
    reload_init, app_init = container(stack, "reload-init"), container(stack, "app-init")
    for suffix in ("reload-tls", "reload-acl"):
        job = container(stack, suffix)
        needs = set(job.options["dependencies"])
        assert {redis.urn, redis_init.urn, reload_init.urn} <= needs, suffix
        assert job.urn in app_init.options["dependencies"], (
            f"the app's files must change only after {suffix}: Redis first accepts the new "
            "password and trusts the new CA"
        )


def test_reload_jobs__the_acl_load_runs_after_the_tls_reload(stack: RenderedStack) -> None:
    """ACL LOAD closes the connection of every user in the file, the TLS job's `reload` user
    included (tests/integration/test_redis_rotation.py shows it on a real Redis): run at the
    same time, as every engine runs resources that do not depend on each other, it can close
    that job's connection before its CONFIG SET and fail the up. Registration order is no
    order: the dependency must be declared."""
    tls, acl = container(stack, "reload-tls"), container(stack, "reload-acl")
    assert tls.urn in acl.options["dependencies"]


# --- the reload job's confinement ----------------------------------------------------------


@pytest.fixture(params=("reload-tls", "reload-acl"))
def job(stack: RenderedStack, request: pytest.FixtureRequest) -> RenderedResource:
    return container(stack, str(request.param))


def test_reload_job__is_hardened_like_every_container(
    stack: RenderedStack, job: RenderedResource
) -> None:
    props = job.props
    assert props["readOnly"] is True
    assert props["capabilities"]["drops"] == ["ALL"]
    assert "no-new-privileges:true" in props["securityOpts"]
    # Redis's own uid, and so Redis's process bound (infra/components/reload.py).
    redis = container(stack, "redis").props
    assert props["user"] == redis["user"]
    assert props["ulimits"] == redis["ulimits"]
    assert props["memory"] > 0
    assert props["memorySwap"] == props["memory"]
    assert props["privileged"] is False
    assert props["attach"] is True
    assert props["restart"] == "no"
    assert not props.get("ports")
    assert [n["name"] for n in props["networksAdvanced"]] == [f"secure-redis-{_stack(job)}-backend"]
    assert all(m["readOnly"] for m in props["mounts"])
    assert [m["source"] for m in props["mounts"]] == [f"secure-redis-{_stack(job)}-reload-material"]


def _stack(resource: RenderedResource) -> str:
    return str(labels(resource)["io.secure-redis.stack"])


def test_reload_job__no_secret_on_its_argv_or_env(
    stack: RenderedStack, job: RenderedResource
) -> None:
    words = [*job.props.get("entrypoints", []), *job.props.get("command", [])]
    words += list(job.props.get("envs", []))
    secrets = [v for r in stack.resources for v in r.secret_values() if isinstance(v, str) and v]
    for secret in secrets:
        assert all(secret not in word for word in words), f"{job.name}: a secret on argv/env"
    assert not job.secret_paths


def test_reload_job__own_volume_holds_no_server_key(stack: RenderedStack) -> None:
    assert set(uploads(container(stack, "reload-init"))) == {
        "ca.crt",
        "reload.crt",
        "reload.key",
        "reload.password",
        "reload.retired-password",
        "reload.previous.crt",
        "reload.previous.key",
    }


# --- what each file holds ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", INITIALISERS)
def test_every_consumer__trusts_the_ca_bundle(stack: RenderedStack, suffix: str) -> None:
    bundle = _dynamic(stack, "tls-ca").outputs["trustBundlePem"]
    assert _content(container(stack, suffix), "ca.crt") == bundle


def test_acl__declares_the_reload_user(stack: RenderedStack) -> None:
    acl = _content(container(stack, "redis-init"), "users.acl")
    reload_hash = _dynamic(stack, "secrets-reload-password").outputs["aclHash"]
    assert f"user {RELOAD_USER} on {reload_hash} resetkeys resetchannels -@all" in acl


def _render_created(
    provider: type[ResourceProvider],
    more: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> RenderedStack:
    """dev rendered with the outputs each `provider` resource is created with updated by
    `more(created outputs, props)`, as a later phase of its lifecycle leaves them."""
    original = provider.create

    def create_later(self: ResourceProvider, props: dict[str, Any]) -> Any:
        created = original(self, props)
        outs = dict(created.outs or {})
        created.outs = {**outs, **more(outs, props)}
        return created

    provider.create = create_later  # type: ignore[method-assign]
    try:
        return render_stack("dev")
    finally:
        provider.create = original  # type: ignore[method-assign]


def _render_passwords(phase: Callable[[str, int], dict[str, Any]]) -> RenderedStack:
    """dev rendered with every password's outputs made by `phase(created value, length)`."""
    return _render_created(
        GeneratedPasswordProvider, lambda outs, props: phase(outs["value"], int(props["length"]))
    )


@pytest.fixture(scope="module")
def rotating() -> RenderedStack:
    """dev rendered with every password in its ROTATE phase (a new value beside the old)."""
    return _render_passwords(lambda old, length: password_outputs(generate_password(length), old))


@pytest.fixture(scope="module")
def after_set() -> RenderedStack:
    """dev rendered with every password just SET: the dropped one kept as `retired`."""
    return _render_passwords(
        lambda old, length: password_outputs(generate_password(length), "", old)
    )


def test_set_phase__the_reload_job_gets_the_retired_password_as_its_second_try(
    after_set: RenderedStack, dev: RenderedStack
) -> None:
    """When the ROTATE before a SET never reached Redis, Redis holds only the password the SET
    dropped (infra/components/reload.py); nothing else is given it, and the ACL not."""
    reload = _dynamic(after_set, "secrets-reload-password").outputs
    assert reload["retired"], "the fixture must give the password a retired value"
    reload_init = container(after_set, "reload-init")
    assert _content(reload_init, "reload.password") == reload["value"]
    assert _content(reload_init, "reload.retired-password") == reload["retired"]
    assert password_hash(reload["retired"]) not in _content(
        container(after_set, "redis-init"), "users.acl"
    )
    for suffix in INITIALISERS:
        if suffix != "reload-init":
            init = container(after_set, suffix)
            assert all(_content(init, name) != reload["retired"] for name in uploads(init))
    assert _content(container(dev, "reload-init"), "reload.retired-password") == ""


@pytest.fixture(scope="module")
def promoted_reload() -> RenderedStack:
    """dev rendered with the reload leaf as a CA promote leaves it: a previous pair kept."""
    old_ca = pki.create_ca("old CA", validity_days=2)
    old = pki.issue_client_certificate(old_ca, RELOAD_USER, validity_days=2)
    previous = {"previousCertPem": old.cert_pem.decode(), "previousKeyPem": old.key_pem.decode()}
    return _render_created(KeepingLeafCertificateProvider, lambda _outs, _props: previous)


def test_promote_phase__only_the_reload_job_gets_the_replaced_certificate_as_its_second_try(
    promoted_reload: RenderedStack, dev: RenderedStack
) -> None:
    """What the reload job tries when Redis never loaded the introduce's bundle
    (infra/components/reload.py); no other consumer is given it, and outside a promote the
    files are empty."""
    leaf = _dynamic(promoted_reload, "tls-reload-client").outputs
    assert leaf["previousKeyPem"], "the fixture must give the leaf a previous pair"
    reload_init = container(promoted_reload, "reload-init")
    assert _content(reload_init, "reload.previous.crt") == leaf["previousCertPem"]
    assert _content(reload_init, "reload.previous.key") == leaf["previousKeyPem"]
    assert uploads(reload_init)["reload.previous.key"].get("mode") == uploads(reload_init)[
        "reload.key"
    ].get("mode")
    for suffix in INITIALISERS:
        if suffix != "reload-init":
            init = container(promoted_reload, suffix)
            assert all(_content(init, n) != leaf["previousKeyPem"] for n in uploads(init))
    steady = container(dev, "reload-init")
    assert _content(steady, "reload.previous.crt") == _content(steady, "reload.previous.key") == ""


def test_reload_leaf__alone_keeps_a_previous_pair_and_its_key_is_secret(
    stack: RenderedStack,
) -> None:
    leaves = [r for r in stack.resources if r.type.endswith(":LeafCertificate")]
    keeping = [r.name for r in leaves if "previousKeyPem" in r.outputs]
    assert keeping == ["tls-reload-client"]
    reload = _dynamic(stack, "tls-reload-client")
    assert set(KEEPING_SECRET_OUTPUTS) <= set(reload.secret_outputs)
    assert "previousKeyPem" in reload.options["additionalSecretOutputs"]


def test_rotate_phase__redis_accepts_both_and_each_consumer_gets_the_right_one(
    rotating: RenderedStack,
) -> None:
    app = _dynamic(rotating, "secrets-app-password").outputs
    health = _dynamic(rotating, "secrets-healthcheck-password").outputs
    reload = _dynamic(rotating, "secrets-reload-password").outputs
    assert app["previous"], "the fixture must put the passwords in their ROTATE phase"
    acl = _content(container(rotating, "redis-init"), "users.acl")
    for password in (app, health, reload):
        assert f"{password_hash(password['value'])} {password_hash(password['previous'])}" in acl
    # Written after Redis reloaded its users: the app switches to the new password.
    assert _content(container(rotating, "app-init"), "redis.password") == app["value"]
    # Written before the reload: what Redis accepts both before and after it.
    redis_init = container(rotating, "redis-init")
    assert _content(redis_init, "healthcheck.password") == health["previous"]
    reload_init = container(rotating, "reload-init")
    assert _content(reload_init, "reload.password") == reload["previous"]


def test_rotate_phase__the_app_hands_out_the_new_api_token_and_accepts_the_old_one(
    rotating: RenderedStack,
) -> None:
    token = _dynamic(rotating, "secrets-api-token").outputs
    assert token["previous"], "the fixture must put the token in its ROTATE phase"
    app_init = container(rotating, "app-init")
    # api.token is what operators read (README); the old token is only accepted.
    assert _content(app_init, "api.token") == token["value"]
    assert _content(app_init, "api.previous-tokens") == token["previous"]


def test_rotate_phase__the_exporter_is_told_how_many_acl_passwords_rotate(
    rotating: RenderedStack, dev: RenderedStack
) -> None:
    """What PasswordRotationUnfinished reads (infra/components/exporter.py): every ACL
    user's password, not the API token, which stays in ROTATE on purpose until clients
    switched (docs/day2.md)."""
    acl_passwords = [
        r
        for r in rotating.resources
        if r.type.endswith(":GeneratedPassword") and not r.name.endswith("-api-token")
    ]
    assert len(acl_passwords) >= 5, "positive control: app, health check, reload, exporter..."
    assert _dynamic(rotating, "secrets-api-token").outputs["previous"], "the token rotates too"
    exporter_init = container(rotating, "redis-exporter-init")
    assert _content(exporter_init, ROTATING_USERS_FILE) == f"{len(acl_passwords)}\n"
    steady = container(dev, "redis-exporter-init")
    assert _content(steady, ROTATING_USERS_FILE) == "0\n"


def test_password_outputs__are_secret(stack: RenderedStack) -> None:
    passwords = [r for r in stack.resources if r.type.endswith(":GeneratedPassword")]
    assert len(passwords) >= 4, "the three users' passwords and the API token"
    for password in passwords:
        assert {"value", "previous", "stable"} <= set(password.secret_outputs), password.name


def test_ca_next_key__is_secret(stack: RenderedStack) -> None:
    assert {"keyPem", "nextKeyPem"} <= set(_dynamic(stack, "tls-ca").secret_outputs)


def test_containers__are_the_known_set(stack: RenderedStack) -> None:
    names = {r.props["name"] for r in stack.of_type(CONTAINER)}
    s = stack.stack
    assert names == {f"secure-redis-{s}-{x}" for x in (*CONSUMERS, *MATERIAL_JOBS)}
