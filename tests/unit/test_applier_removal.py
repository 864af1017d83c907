"""Which objects an up removes before its steps (infra/applier/removal.py): a replaced
container waits for its own step unless a removed network or another container's name or
host port needs it gone first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.applier.diff import docker_changes
from infra.applier.plan import Plan, plan_stack
from infra.applier.removal import removed_first
from infra.applier.state import ResourceState
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK
from tests.support.resources import declared

LABELS = [{"label": "io.secure-redis.stack", "value": "s"}]
DIGEST = "sha256:" + "0" * 64


def plan(
    *,
    net_internal: bool = True,
    tag: str = "a",
    more: dict[str, dict[str, Any]] | None = None,
    **app: Any,
) -> Plan:
    """A network, an image and an `app` container running it on that network, publishing
    host port 18000; `more`: further containers' inputs by resource name."""
    return plan_stack(
        "s",
        [
            declared(NETWORK, "net", {"name": "n", "internal": net_internal, "labels": LABELS}),
            declared(
                IMAGE,
                "img",
                {"imageName": f"i:{tag}", "skipPush": True, "build": {"context": f"/{tag}"}},
                outputs={"repoDigest": DIGEST},
            ),
            declared(
                CONTAINER,
                "app",
                {
                    "name": "app",
                    "image": DIGEST,
                    "labels": LABELS,
                    "networksAdvanced": [{"name": "n"}],
                    "ports": [{"internal": 8080, "external": 18000.0, "ip": "127.0.0.1"}],
                    **app,
                },
            ),
            *(
                declared(CONTAINER, resource, {"labels": LABELS, "image": DIGEST, **props})
                for resource, props in (more or {}).items()
            ),
        ],
        root=Path("/"),
    )


def applied(deployed: Plan) -> dict[str, ResourceState]:
    """The state an up of `deployed` leaves: each object recorded under its own name."""
    return {
        s.urn: ResourceState(
            s.type, getattr(s.spec, "name", None) or s.spec.resource, f"id-{s.urn}", s.props, {}
        )
        for s in deployed.steps
    }


def first(before: Plan, after: Plan) -> list[str]:
    """The resources (by name) the up from `before` to `after` removes before its steps."""
    state = applied(before)
    changes = docker_changes(after, state)
    return [c.urn.removeprefix("urn:") for c in removed_first(after, changes, state)]


def test_a_container_replaced_for_a_setting_waits_for_its_own_step() -> None:
    assert first(plan(), plan(envs=["A=2"])) == []


def test_a_container_replaced_with_its_image_waits_for_its_own_step() -> None:
    """The gap this module closes: the app was removed before its image's build began."""
    assert first(plan(), plan(tag="b", envs=["A=2"])) == ["img"]


def test_a_replaced_network_takes_its_containers_with_it_first() -> None:
    assert first(plan(), plan(net_internal=False)) == ["net", "app"]


def test_a_container_no_longer_declared_goes_first() -> None:
    old = plan(more={"job": {"name": "job", "command": ["true"]}})
    assert first(old, plan()) == ["job"]


def test_a_replaced_container_holding_a_name_another_will_take_goes_first() -> None:
    """`job` renamed `worker` while `app` is renamed `job`: the app's step could create `job`
    before the job's step removed the old one (names never clash)."""
    before = plan(more={"job": {"name": "job", "command": ["true"]}})
    apart = plan(name="app2", more={"job": {"name": "job", "command": ["false"]}})
    assert first(before, apart) == []
    swapped = plan(name="job", more={"job": {"name": "worker", "command": ["true"]}})
    assert first(before, swapped) == ["job"]


def test_a_replaced_container_holding_a_host_port_another_will_publish_goes_first() -> None:
    """The app moves from 18000 to 18001, which `side` publishes and leaves for 18002."""
    side = {"name": "side", "ports": [{"internal": 9090, "external": 18001}]}
    before = plan(more={"side": side})
    apart = plan(envs=["A=2"], more={"side": {**side, "envs": ["B=2"]}})
    assert first(before, apart) == []
    moved = plan(
        ports=[{"internal": 8080, "external": 18001}],
        more={"side": {**side, "ports": [{"internal": 9090, "external": 18002}]}},
    )
    assert first(before, moved) == ["side"]
