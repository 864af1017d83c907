"""The local applier's plan: which rendered resources become Docker objects, in which order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.applier.errors import ApplyError
from infra.applier.plan import plan_stack
from infra.applier.translate import ContainerSpec, ImageSpec, NetworkSpec, VolumeSpec
from infra.naming import STACK_LABEL
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, VOLUME
from infra.render import RenderedResource
from tests.support.resources import declared
from tests.unit.conftest import rendered

PLACEHOLDER = "sha256:" + "b" * 64
STACK = "s"
LABELLED = (
    NETWORK,
    VOLUME,
    CONTAINER,
)


def resource(
    type_: str, name: str, props: dict[str, Any], *, labelled: bool = True, **more: Any
) -> RenderedResource:
    """`declared` (deps, outputs, custom), with the stack label on Docker objects."""
    if labelled and type_ in LABELLED:
        props = {"labels": [{"label": STACK_LABEL, "value": STACK}], **props}
    return declared(type_, name, props, **more)


def image() -> RenderedResource:
    props = {"imageName": "i:1", "skipPush": True, "build": {"context": "/ctx"}}
    return resource(IMAGE, "img", props, outputs={"repoDigest": PLACEHOLDER})


def app_container(**extra: Any) -> RenderedResource:
    props = {
        "name": "app",
        "image": PLACEHOLDER,
        "networksAdvanced": [{"name": "net"}],
        "mounts": [{"type": "volume", "source": "vol", "target": "/m"}],
        **extra,
    }
    return resource(CONTAINER, "ctr", props)


def test_plan__container_after_its_image_network_and_volume_even_when_registered_first() -> None:
    resources = [
        app_container(),
        resource(VOLUME, "vol-r", {"name": "vol"}),
        resource(NETWORK, "net-r", {"name": "net"}),
        image(),
    ]
    plan = plan_stack("s", resources, root=Path("/"))
    kinds = [type(step.spec) for step in plan.steps]
    assert kinds[-1] is ContainerSpec
    assert set(kinds[:-1]) == {VolumeSpec, NetworkSpec, ImageSpec}


def test_plan__keeps_registration_order_otherwise() -> None:
    resources = [
        resource(NETWORK, "b", {"name": "b"}),
        resource(NETWORK, "a", {"name": "a"}),
    ]
    assert [s.spec.resource for s in plan_stack("s", resources, root=Path("/")).steps] == [
        "b",
        "a",
    ]


def test_plan__image_step_carries_the_renders_placeholder_id() -> None:
    (step,) = plan_stack("s", [image()], root=Path("/")).steps
    assert step.placeholder == PLACEHOLDER


def test_plan__skips_components_and_dynamic_resources() -> None:
    resources = [
        resource("secure-redis:infra:RedisServer", "redis", {}, custom=False),
        resource("pulumi-python:dynamic/secure-redis:CertificateAuthority", "ca", {"x": 1}),
    ]
    plan = plan_stack("s", resources, root=Path("/"))
    assert plan.steps == ()
    assert plan.skipped == ("redis", "ca")


@pytest.mark.parametrize("type_", [REMOTE_IMAGE, "random:index/randomPassword:RandomPassword"])
def test_plan__unsupported_resource_type_is_an_error(type_: str) -> None:
    with pytest.raises(ApplyError, match=r"^thing: resource type .* is not supported"):
        plan_stack("s", [resource(type_, "thing", {"name": "x"})], root=Path("/"))


def test_plan__a_remote_docker_provider_is_refused() -> None:
    provider = resource("pulumi:providers:docker", "remote", {"host": "ssh://deploy@far"})
    with pytest.raises(ApplyError, match="only deploys to the local Docker engine"):
        plan_stack("s", [provider], root=Path("/"))


@pytest.mark.parametrize("type_", LABELLED)
def test_plan__an_object_without_the_stack_label_is_refused(type_: str) -> None:
    """`down` finds objects by label: an unlabelled one would outlive its stack."""
    props: dict[str, Any] = {"name": "x"}
    if type_.endswith("Container"):
        props["image"] = PLACEHOLDER
    unlabelled = resource(type_, "thing", props, labelled=False)
    with pytest.raises(ApplyError, match=rf"^thing: not labelled {STACK_LABEL}=s"):
        plan_stack(STACK, [unlabelled], root=Path("/"))


def test_plan__an_object_of_another_stack_is_refused() -> None:
    network = resource(NETWORK, "net", {"name": "x"})
    with pytest.raises(ApplyError, match=rf"not labelled {STACK_LABEL}=other"):
        plan_stack("other", [network], root=Path("/"))


def test_plan__a_value_of_the_wrong_shape_names_the_resource_not_the_value() -> None:
    bad = resource(
        NETWORK,
        "net",
        {"name": "x", "labels": [{"label": STACK_LABEL, "value": STACK}, {"no-label": "s3cret"}]},
        labelled=False,
    )
    with pytest.raises(ApplyError, match=r"^net: a declared property has a value") as caught:
        plan_stack(STACK, [bad], root=Path("/"))
    assert "s3cret" not in str(caught.value)


def test_plan__dependency_cycle_is_an_error() -> None:
    a = resource(NETWORK, "a", {"name": "a"}, deps=("b",))
    b = resource(NETWORK, "b", {"name": "b"}, deps=("a",))
    with pytest.raises(ApplyError, match="dependency cycle"):
        plan_stack("s", [a, b], root=Path("/"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan__the_real_program_translates_completely(stack: str) -> None:
    """Every property the program declares is honoured (nothing raises UnsupportedProperty)."""
    plan = plan_stack(stack, rendered(stack).resources, root=Path("/"))
    names = {getattr(s.spec, "name", None) or getattr(s.spec, "tag", None) for s in plan.steps}
    assert {
        f"secure-redis-{stack}-backend",
        f"secure-redis-{stack}-frontend",
        f"secure-redis-{stack}-redis",
        f"secure-redis-{stack}-app",
        f"secure-redis-{stack}-redis-init",
        f"secure-redis-{stack}-app-init",
    } <= names
    order = [getattr(s.spec, "name", None) for s in plan.steps]
    # Material first, then Redis, then the app that needs a healthy Redis.
    assert order.index(f"secure-redis-{stack}-redis-init") < order.index(
        f"secure-redis-{stack}-redis"
    )
    assert order.index(f"secure-redis-{stack}-redis") < order.index(f"secure-redis-{stack}-app")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan__every_container_uses_an_image_the_plan_builds(stack: str) -> None:
    plan = plan_stack(stack, rendered(stack).resources, root=Path("/"))
    built = {s.placeholder for s in plan.steps if isinstance(s.spec, ImageSpec)}
    used = {s.image for s in plan.of(ContainerSpec) if isinstance(s, ContainerSpec)}
    assert used <= built
