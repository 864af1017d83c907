"""The render API and `python -m infra.preview`, and the program's structure.

See docs/design.md#stable-interfaces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

import pulumi
import pytest

from infra import preview
from infra.components import app as app_component
from infra.pulumi_names import CONTAINER, NETWORK
from infra.render import REDACTED, RenderedStack, format_path, render_settings, render_stack
from tests.unit.conftest import container
from tests.unit.test_infra_secrets import _assert_no_secret_in


def test_format_path__quotes_keys_that_are_not_identifiers() -> None:
    assert format_path(("uploads", 4, "content")) == "uploads[4].content"
    assert format_path(("logOpts", "max-size")) == 'logOpts["max-size"]'


def test_record__has_the_contract_keys(stack: RenderedStack) -> None:
    record = container(stack, "redis").to_record()
    assert set(record) == {"type", "name", "props", "urn", "options"}
    assert set(record["options"]) >= {
        "additionalSecretOutputs",
        "parent",
        "dependencies",
        "protect",
        "provider",
    }


def test_props__use_engine_camel_case_names(stack: RenderedStack) -> None:
    props = container(stack, "redis").props
    assert {"readOnly", "securityOpts", "networksAdvanced", "memorySwap"} <= set(props)
    assert "read_only" not in props


def test_urns__follow_the_engine_format(stack: RenderedStack) -> None:
    redis = container(stack, "redis")
    assert redis.urn == (
        f"urn:pulumi:{stack.stack}::secure-redis::secure-redis:infra:RedisServer$"
        "docker:index/container:Container::redis-container"
    )


def test_custom_resources__are_children_of_components(stack: RenderedStack) -> None:
    components = {r.urn for r in stack.resources if not r.custom}
    for resource in stack.resources:
        if resource.custom:
            assert resource.options["parent"] in components, f"{resource.urn}: parent=self"


def test_components__use_the_project_type_namespace(stack: RenderedStack) -> None:
    types = {r.type for r in stack.resources if not r.custom}
    assert types == {
        f"secure-redis:infra:{name}"
        for name in (
            "StackNetworks",
            "TlsMaterial",
            "StackSecrets",
            "RedisServer",
            "CacheApp",
            "RedisExporter",
            "RotationPass",
            "MaterialVolume",
            "RedisReload",
        )
    }


def test_redis__depends_on_its_material(stack: RenderedStack) -> None:
    redis, init = container(stack, "redis"), container(stack, "redis-init")
    assert init.urn in redis.options["dependencies"], "Redis must start after its initialiser"


def test_outputs__name_the_stack_objects(stack: RenderedStack) -> None:
    s = stack.stack
    assert stack.outputs["redisContainer"] == f"secure-redis-{s}-redis"
    assert stack.outputs["backendNetwork"] == f"secure-redis-{s}-backend"
    assert stack.outputs["redisEndpoint"].startswith("rediss://redis:")
    assert stack.outputs["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_outputs__certificate_expiry_of_every_certificate_the_stack_issues(
    stack: RenderedStack,
) -> None:
    """`certificateExpiry` (what setup-secure-redis.sh shows) names each certificate resource,
    `tls-<a>-<b>` as `<a><B>`: one issued later and left out of it fails here."""
    issued = [
        r.name.removeprefix("tls-").split("-")
        for r in stack.resources
        if r.type.endswith((":CertificateAuthority", ":LeafCertificate"))
    ]
    assert len(issued) >= 7, "positive control: the CA, the server and five client identities"
    expected = {words[0] + "".join(w.title() for w in words[1:]) for words in issued}
    assert set(stack.outputs["certificateExpiry"]) == expected


def test_outputs__are_not_secret(stack: RenderedStack) -> None:
    assert not stack.secret_outputs, "no output should need to be secret; secrets are not exported"


def test_render_settings__renders_an_altered_stack(dev: RenderedStack) -> None:
    altered = render_settings(dataclasses.replace(dev.settings, redis_port=6390))
    command = container(altered, "redis").props["command"]
    assert command[command.index("--tls-port") + 1] == "6390"


def test_leak_check__catches_an_unsecreted_value(
    dev: RenderedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leak tests can fail: a program that unsecrets the password into env is caught."""
    original = app_component.app_envs

    def leaky(args: app_component.CacheAppArgs) -> list[Any]:
        leak = pulumi.Output.unsecret(pulumi.Output.from_input(args.files.password))
        return [*original(args), leak.apply(lambda value: f"REDIS_PASSWORD={value}")]

    monkeypatch.setattr(app_component, "app_envs", leaky)
    leaky_stack = render_settings(dev.settings)
    app = container(leaky_stack, "app")
    with pytest.raises(AssertionError, match="contains a secret value"):
        _assert_no_secret_in(leaky_stack, app.urn, app.to_record()["props"])


def test_preview_json__prints_redacted_records() -> None:
    out = io.StringIO()
    assert preview.main(["--stack", "dev", "--json"], out=out) == 0
    records = json.loads(out.getvalue())
    init = next(r for r in records if r["props"].get("name") == "secure-redis-dev-redis-init")
    contents = [u["content"] for u in init["props"]["uploads"]]
    assert contents.count(REDACTED) == 3
    assert {r["type"] for r in records} >= {CONTAINER, NETWORK}


def test_preview_table__lists_every_resource(dev: RenderedStack) -> None:
    out = io.StringIO()
    assert preview.main(["--stack", "dev"], out=out) == 0
    text = out.getvalue()
    assert "nothing was deployed" in text
    for resource in dev.resources:
        assert resource.name in text


def test_preview__bad_stack_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview.main(["--stack", "nosuchstack"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.nosuchstack.yaml does not exist" in err
    # `component: error: ...` as every other command's (apply, stack_config, the scripts)
    assert err.startswith("preview: error: "), err


def test_render__after_an_asyncio_run_in_the_same_thread() -> None:
    """asyncio.run() leaves its thread without a current event loop; the render then failed
    ("There is no current event loop", 39 setup errors and failures in one CI run when an
    async test ran before the render tests on the same worker)."""
    asyncio.run(asyncio.sleep(0))
    assert render_stack("dev").resources
