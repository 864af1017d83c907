"""The second `up`, decided without Docker: the render keeps, updates or replaces dynamic
resources through their providers (infra/mock_engine.py), and `docker_changes` replaces only
the Docker objects whose declaration changed (infra/applier/diff.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from infra import pki
from infra.applier.diff import (
    IMAGE_REBUILT,
    IN_PLACE,
    MISSING,
    VOLUME_KEPT,
    changed_paths,
    docker_changes,
    rebuilt_image_only,
    summary,
    updated_in_place,
)
from infra.applier.plan import Plan, plan_stack
from infra.applier.state import ResourceState
from infra.applier.translate import ContainerSpec, update_kwargs
from infra.changes import Change, Op
from infra.mock_engine import Prior, RenderError
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, PYTHON_DYNAMIC_PREFIX, VOLUME
from infra.render import RenderedResource, RenderedStack, render_settings
from infra.settings import REPO_ROOT
from tests.support.resources import declared
from tests.unit.conftest import rendered

LEAVES = (
    "tls-redis-server",
    "tls-app-client",
    "tls-healthcheck-client",
    "tls-reload-client",
    "tls-exporter-client",
    "tls-rotation-client",
)


def priors(stack: RenderedStack) -> dict[str, Prior]:
    return {
        r.urn: Prior(r.id, r.state_inputs, r.outputs)
        for r in stack.resources
        if r.type.startswith(PYTHON_DYNAMIC_PREFIX)
    }


def applied(plan: Plan) -> dict[str, ResourceState]:
    """The state an `up` of `plan` leaves for its Docker objects."""
    return {
        s.urn: ResourceState(s.type, s.urn, f"id-{s.urn}", s.props, {"imageId": "sha256:x"})
        for s in plan.steps
    }


def again(first: RenderedStack, **settings: Any) -> RenderedStack:
    changed = dataclasses.replace(first.settings, **settings)
    return render_settings(changed, previous=priors(first))


def dynamic_ops(stack: RenderedStack) -> dict[str, Op]:
    return {r.name: r.change.op for r in stack.resources if r.change is not None}


def docker_ops(first: RenderedStack, second: RenderedStack) -> dict[str, Change]:
    before = plan_stack(first.stack, first.resources, root=REPO_ROOT)
    after = plan_stack(second.stack, second.resources, root=REPO_ROOT)
    return {c.name: c for c in docker_changes(after, applied(before)) if c.op is not Op.SAME}


@pytest.fixture(scope="module")
def first() -> RenderedStack:
    return rendered("dev")


def test_render__first_time_every_dynamic_resource_is_created(first: RenderedStack) -> None:
    assert set(dynamic_ops(first).values()) == {Op.CREATE}
    # CA, 6 leaves, 5 passwords, the API token, the data keyring.
    assert len(dynamic_ops(first)) == 14


def test_second_up__nothing_changed_keeps_every_secret_and_declares_the_same(
    first: RenderedStack,
) -> None:
    second = again(first)
    assert set(dynamic_ops(second).values()) == {Op.SAME}
    # Registration order may differ between renders (outputs resolve concurrently).
    before = {r.urn: (r.props, r.outputs) for r in first.resources}
    assert before == {r.urn: (r.props, r.outputs) for r in second.resources}
    assert docker_ops(first, second) == {}


def test_second_up__app_memory_replaces_only_the_app_container(first: RenderedStack) -> None:
    second = again(first, app_memory_mb=first.settings.app_memory_mb + 64)
    assert set(dynamic_ops(second).values()) == {Op.SAME}
    changes = docker_ops(first, second)
    assert list(changes) == ["secure-redis-dev-app"]
    assert changes["secure-redis-dev-app"].op is Op.REPLACE
    assert "memory" in changes["secure-redis-dev-app"].reasons


def test_second_up__redis_memory_updates_redis_in_place(first: RenderedStack) -> None:
    """pulumi-docker changes `memory` and `memorySwap` on the running container (IN_PLACE), so
    `pulumi up` keeps Redis and its data in memory; the applier did replace it."""
    second = again(first, redis_memory_mb=first.settings.redis_memory_mb + 64)
    assert set(dynamic_ops(second).values()) == {Op.SAME}
    changes = docker_ops(first, second)
    assert list(changes) == ["secure-redis-dev-redis"]
    assert changes["secure-redis-dev-redis"].op is Op.UPDATE
    assert set(changes["secure-redis-dev-redis"].reasons) == {"memory", "memorySwap"}


def test_second_up__redis_cpus_replaces_redis(first: RenderedStack) -> None:
    """`cpus` is ForceNew in pulumi-docker's container (diff.IN_PLACE): replaced there too."""
    second = again(first, redis_cpus=first.settings.redis_cpus + 0.25)
    changes = docker_ops(first, second)
    assert list(changes) == ["secure-redis-dev-redis"]
    assert changes["secure-redis-dev-redis"].op is Op.REPLACE
    assert changes["secure-redis-dev-redis"].reasons == ("cpus",)


def test_second_up__forced_renewal_replaces_the_leaves_and_reruns_the_initialisers(
    first: RenderedStack,
) -> None:
    second = again(first, cert_renewal_generation=1)
    ops = dynamic_ops(second)
    assert {name for name, op in ops.items() if op is Op.REPLACE} == set(LEAVES)
    assert ops["tls-ca"] is Op.SAME
    leaf = next(r for r in second.resources if r.name == "tls-redis-server")
    assert leaf.change is not None
    assert leaf.change.reasons == ("renewalGeneration",)
    changes = docker_ops(first, second)
    init = changes["secure-redis-dev-redis-init"]
    assert init.op is Op.REPLACE
    assert any(r.startswith("uploads[") and r.endswith("].content") for r in init.reasons)
    assert "secure-redis-dev-redis-data" not in changes, "the data volume is never touched"


def test_second_up__a_certificate_inside_its_renewal_window_is_renewed(
    first: RenderedStack,
) -> None:
    previous = priors(first)
    server = next(r for r in first.resources if r.name == "tls-redis-server")
    ca = next(r for r in first.resources if r.name == "tls-ca")
    settings = first.settings
    old = pki.issue_server_certificate(
        pki.CertifiedKey(ca.outputs["certPem"].encode(), ca.outputs["keyPem"].encode()),
        "redis",
        dns_names=list(server.state_inputs["dnsNames"]),
        algorithm=settings.key_algorithm.value,
        validity_days=settings.cert_validity_days,
        now=dt.datetime.now(dt.UTC)
        - dt.timedelta(days=settings.cert_validity_days - settings.cert_renew_before_days + 1),
    )
    prior = previous[server.urn]
    previous[server.urn] = Prior(
        prior.id, prior.inputs, {**prior.outputs, "certPem": old.cert_pem.decode()}
    )
    second = render_settings(settings, previous=previous)
    renewed = next(r for r in second.resources if r.name == "tls-redis-server")
    assert renewed.change is not None
    assert renewed.change.op is Op.REPLACE
    assert renewed.change.reasons == ("certPem: the provider asks for a new one",)
    assert renewed.outputs["certPem"] != old.cert_pem.decode()
    others = {n: op for n, op in dynamic_ops(second).items() if n != "tls-redis-server"}
    assert set(others.values()) == {Op.SAME}


def test_second_up__data_key_generation_updates_the_keyring_in_place(
    first: RenderedStack,
) -> None:
    second = again(first, data_key_generation=2)
    keyring = next(r for r in second.resources if r.name == "secrets-data-keyring")
    before = next(r for r in first.resources if r.name == "secrets-data-keyring")
    assert keyring.change is not None
    assert keyring.change.op is Op.UPDATE
    assert keyring.change.reasons == ("generation",)
    assert keyring.outputs["primaryKey"] != before.outputs["primaryKey"]
    assert keyring.outputs["previousKeys"] == before.outputs["primaryKey"]


def test_second_up__a_lowered_data_key_generation_is_refused_before_anything_changes(
    first: RenderedStack,
) -> None:
    bumped = again(first, data_key_generation=3)
    back = dataclasses.replace(first.settings, data_key_generation=2)
    with pytest.raises(RenderError, match="dataKeyGeneration is 2, below") as refused:
        render_settings(back, previous=priors(bumped))
    message = str(refused.value)
    assert "nothing was changed" in message
    assert "stack_config set --stack STACK dataKeyGeneration 3" in message, "the way back"


def test_second_up__a_data_key_raised_again_before_its_rotation_finished_is_refused(
    first: RenderedStack,
) -> None:
    """The second raise would retire the key the entries not yet moved are sealed with: the
    render stops, naming the way on, before anything is deployed."""
    bumped = again(first, data_key_generation=2)
    again_bumped = dataclasses.replace(first.settings, data_key_generation=3)
    with pytest.raises(RenderError, match="dataKeyKeepPrevious") as refused:
        render_settings(again_bumped, previous=priors(bumped))
    assert "rotate.sh" in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    keyring = next(r for r in bumped.resources if r.name == "secrets-data-keyring")
    for key in (keyring.outputs["primaryKey"], keyring.outputs["previousKeys"]):
        assert str(key) not in str(refused.value), "never a key in the message"


def test_second_up__password_length_rotates_the_passwords_in_place(first: RenderedStack) -> None:
    second = again(first, password_length=first.settings.password_length + 8)
    ops = dynamic_ops(second)
    for password in ("app", "healthcheck", "reload"):
        assert ops[f"secrets-{password}-password"] is Op.UPDATE
    assert ops["tls-ca"] is Op.SAME


# -- docker_changes on small hand-made plans ---------------------------------------------------

NET, VOL, CTR, IMG = NETWORK, VOLUME, CONTAINER, IMAGE
LABELS = [{"label": "io.secure-redis.stack", "value": "s"}]


def resource(
    type_: str, name: str, props: dict[str, Any], outputs: dict[str, Any] | None = None
) -> RenderedResource:
    return declared(type_, name, props, outputs=outputs)


def small(
    *,
    net_internal: bool = True,
    upload: str = "one",
    vol_driver: str = "local",
    **container: Any,
) -> Plan:
    """A network, a volume and a container using both; `container`: more container inputs."""
    return plan_stack(
        "s",
        [
            resource(NET, "net", {"name": "n", "internal": net_internal, "labels": LABELS}),
            resource(VOL, "vol", {"name": "v", "driver": vol_driver, "labels": LABELS}),
            resource(
                CTR,
                "ctr",
                {
                    "name": "c",
                    "image": "debian:bookworm-slim",
                    "labels": LABELS,
                    "networksAdvanced": [{"name": "n"}],
                    "mounts": [{"type": "volume", "source": "v", "target": "/v"}],
                    "uploads": [{"file": "/run/x", "content": upload}],
                    **container,
                },
            ),
        ],
        root=Path("/"),
    )


def ops(changes: list[Change]) -> dict[str, tuple[Op, tuple[str, ...]]]:
    return {c.name: (c.op, c.reasons) for c in changes}


def test_docker_changes__no_state_creates_everything() -> None:
    assert {op for op, _ in ops(docker_changes(small(), {})).values()} == {Op.CREATE}


@pytest.mark.parametrize(
    ("old", "new", "paths"),
    [
        # `plan` said `envs[10]; envs[15]`: now the names, never a value.
        (["A=1", "B=s3cret", "C=3"], ["A=1", "B=n3w", "C=4"], ["envs.B", "envs.C"]),
        (["A=1"], ["A=1", "B=2"], ["envs.B"]),  # added: the list's length changed
        (["A=1", "B=2"], ["A=1"], ["envs.B"]),  # removed
        (["A=1", "B=2"], ["B=2", "A=1"], ["envs[0]", "envs[1]"]),  # the order: by position
        (["A=1", "A=2"], ["A=1", "A=3"], ["envs[1]"]),  # a name twice: by position
        (["A=1", "PATH"], ["A=1", "PATH2"], ["envs[1]"]),  # not NAME=value: by position
    ],
)
def test_changed_paths__a_containers_environment_is_named_by_variable(
    old: list[str], new: list[str], paths: list[str]
) -> None:
    found = changed_paths({"envs": old, "memory": 1}, {"envs": new, "memory": 1})
    assert found == paths
    assert not any("s3cret" in p or "n3w" in p for p in found)


@pytest.mark.parametrize(
    ("old", "new", "paths"),
    [
        # `plan` said `command[41]` for redisMaxmemoryMb: now the flag.
        (
            ["redis-server", "/c", "--maxmemory", "192mb", "--tls-protocols", "TLSv1.2 TLSv1.3"],
            ["redis-server", "/c", "--maxmemory", "256mb", "--tls-protocols", "TLSv1.3"],
            ['command["--maxmemory"]', 'command["--tls-protocols"]'],
        ),
        (["x", "--a", "1"], ["x", "--a", "1", "--b", "2"], ['command["--b"]']),  # added
        (["x", "--save", "1", "2"], ["x", "--save", "1", "3"], ['command["--save"][1]']),
        (["CONFIG", "SET", "a", "b"], ["CONFIG", "SET", "a", "c"], ["command[3]"]),  # no flags
        (["x", "--a", "1", "--a", "2"], ["x", "--a", "1", "--a", "3"], ["command[4]"]),  # twice
    ],
)
def test_changed_paths__a_command_line_is_named_by_flag(
    old: list[str], new: list[str], paths: list[str]
) -> None:
    assert changed_paths({"command": old}, {"command": new}) == paths


def _upload(file: str, content: str, mode: int = 0o400) -> dict[str, object]:
    return {"file": file, "content": content, "permissions": mode}


@pytest.mark.parametrize(
    ("old", "new", "paths"),
    [
        (
            [_upload("/m/a.key", "s3cret"), _upload("/m/b.crt", "x")],
            [_upload("/m/a.key", "n3w"), _upload("/m/b.crt", "x", 0o444)],
            ['uploads["/m/a.key"].content', 'uploads["/m/b.crt"].permissions'],
        ),
        ([_upload("/m/a.key", "s3cret")], [], ['uploads["/m/a.key"]']),
        ([_upload("/m/a", "1"), _upload("/m/a", "2")], [_upload("/m/a", "1")], ["uploads"]),
    ],
)
def test_changed_paths__an_upload_is_named_by_its_file(
    old: list[dict[str, object]], new: list[dict[str, object]], paths: list[str]
) -> None:
    found = changed_paths({"uploads": old}, {"uploads": new})
    assert found == paths
    assert not any("s3cret" in p or "n3w" in p for p in found)


def test_docker_changes__a_changed_upload_names_the_path_never_the_value() -> None:
    changes = ops(docker_changes(small(upload="new-secret"), applied(small())))
    assert changes["c"] == (Op.REPLACE, ('uploads["/run/x"].content',))
    assert changes["n"][0] is Op.SAME
    assert "new-secret" not in repr(changes)


def test_docker_changes__a_replaced_network_replaces_the_containers_on_it() -> None:
    changes = ops(docker_changes(small(net_internal=False), applied(small())))
    assert changes["n"] == (Op.REPLACE, ("internal",))
    assert changes["c"] == (Op.REPLACE, ("network n is recreated",))


def test_docker_changes__a_changed_volume_is_kept_and_says_so() -> None:
    changes = ops(docker_changes(small(vol_driver="other"), applied(small())))
    assert changes["v"] == (Op.SAME, ("driver", VOLUME_KEPT))
    assert changes["c"][0] is Op.SAME


def test_docker_changes__an_object_the_engine_lost_or_stopped_is_created_again() -> None:
    changes = ops(docker_changes(small(), applied(small()), frozenset({"urn:ctr", "urn:vol"})))
    assert changes["c"] == (Op.REPLACE, (MISSING,))
    assert changes["v"] == (Op.CREATE, (MISSING,))


def test_docker_changes__an_object_no_longer_declared_is_deleted_volumes_only_forgotten() -> None:
    state = {
        **applied(small()),
        "urn:old": ResourceState(CTR, "old", "id", {}, {}),
        "urn:oldvol": ResourceState(VOL, "oldvol", "oldvol", {}, {}),
    }
    changes = ops(docker_changes(small(), state))
    assert changes["old"] == (Op.DELETE, ())
    assert changes["oldvol"] == (Op.DELETE, (VOLUME_KEPT,))


def test_docker_changes__a_rebuilt_image_replaces_its_containers() -> None:
    def plan(tag: str) -> Plan:
        digest = f"sha256:{tag * 64}"
        return plan_stack(
            "s",
            [
                resource(
                    IMG,
                    "img",
                    {"imageName": f"i:{tag}", "skipPush": True, "build": {"context": "/c"}},
                    {"repoDigest": digest},
                ),
                resource(CTR, "ctr", {"name": "c", "image": digest, "labels": LABELS}),
            ],
            root=Path("/"),
        )

    same_image = docker_changes(plan("a"), applied(plan("a")), frozenset({"urn:img"}))
    assert ops(same_image)["c"] == (Op.REPLACE, (IMAGE_REBUILT,))
    # Replaced only if the build gives another image ID (the engine decides after building).
    assert [c.name for c in same_image if rebuilt_image_only(c)] == ["c"]


@pytest.mark.parametrize(
    ("old", "new", "paths"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, ["a"]),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, ["a.b[1]"]),
        ({"l": [1]}, {"l": [1, 2]}, ["l"]),
        ({"logOpts": {"max-size": "1m"}}, {"logOpts": {"max-size": "2m"}}, ['logOpts["max-size"]']),
        ({}, {"new": True}, ["new"]),
        (1, 2, ["(all properties)"]),
    ],
)
def test_changed_paths(old: Any, new: Any, paths: list[str]) -> None:
    assert changed_paths(old, new) == paths


def test_summary__a_plan_says_what_it_will_do_a_finished_up_what_it_did() -> None:
    """After an up, "stack S is up: 37 to create" read as if nothing had been created yet."""
    changes = [
        Change("urn:a", CONTAINER, "a", Op.CREATE),
        Change("urn:b", CONTAINER, "b", Op.REPLACE),
        Change("urn:c", NETWORK, "c", Op.SAME),
    ]
    assert summary(changes) == "1 to create, 1 to replace, 1 unchanged"
    assert summary(changes, done=True) == "1 created, 1 replaced, 1 unchanged"
    assert summary([], done=True) == "nothing"


def test_summary__an_initialiser_re_run_is_counted_as_re_run_not_replaced() -> None:
    """day2ux16: the line said `re-run  initialiser ...` and the counts `1 to replace`."""
    changes = [
        Change("urn:a", CONTAINER, "secure-redis-s-redis-init", Op.REPLACE, (IMAGE_REBUILT,)),
        Change("urn:b", CONTAINER, "secure-redis-s-app-init", Op.REPLACE, (IMAGE_REBUILT,)),
        Change("urn:c", CONTAINER, "secure-redis-s-app", Op.REPLACE),
        Change("urn:d", NETWORK, "secure-redis-s-backend", Op.SAME),
    ]
    inits = {"secure-redis-s-redis-init", "secure-redis-s-app-init"}
    assert summary(changes, rerun=inits) == "1 to replace, 2 to re-run, 1 unchanged"
    assert (
        summary(changes, done=True, kept={"secure-redis-s-app-init"}, rerun=inits)
        == "1 replaced, 1 re-run, 1 kept (its image was rebuilt to the same image ID), 1 unchanged"
    )
    assert summary(changes[:1], done=True, rerun=inits) == "1 re-run"


def test_summary__a_container_kept_after_its_rebuild_is_not_counted_replaced() -> None:
    """A container planned for replacement because its image is rebuilt, and kept because the
    build gave the same image ID, was counted "replaced" with a note that it was kept."""
    changes = [
        Change("urn:a", CONTAINER, "secure-redis-s-app", Op.REPLACE, (IMAGE_REBUILT,)),
        Change("urn:b", CONTAINER, "secure-redis-s-redis", Op.REPLACE, (IMAGE_REBUILT,)),
        Change("urn:c", NETWORK, "secure-redis-s-backend", Op.SAME),
    ]
    assert (
        summary(changes, done=True, kept={"secure-redis-s-redis"})
        == "1 replaced, 1 kept (its image was rebuilt to the same image ID), 1 unchanged"
    )


LIMITS: dict[str, Any] = {
    "memory": 256,
    "memorySwap": 256,
    "restart": "on-failure",
    "maxRetryCount": 5,
    "cpuShares": 512,
}


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"memory": 320, "memorySwap": 320}, ("memory", "memorySwap")),
        ({"restart": "unless-stopped"}, ("restart",)),
        ({"maxRetryCount": 3}, ("maxRetryCount",)),
        ({"cpuShares": 1024, "cpuSet": "0"}, ("cpuSet", "cpuShares")),
    ],
    ids=["memory", "restart", "retries", "cpu-shares-and-set"],
)
def test_docker_changes__limits_and_restart_policy_update_the_container_in_place(
    change: dict[str, Any], reasons: tuple[str, ...]
) -> None:
    changes = ops(docker_changes(small(**LIMITS | change), applied(small(**LIMITS))))
    assert changes["c"] == (Op.UPDATE, reasons)
    assert changes["n"][0] is Op.SAME


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"memory": 320, "cpus": "0.5"}, "cpus is ForceNew in pulumi-docker"),
        ({"memory": 320, "upload": "two"}, "uploads are ForceNew"),
        ({"memory": None}, "a limit taken away: Docker's update reads 0 as unchanged"),
        ({"memory": 320, "net_internal": False}, "its network is recreated"),
    ],
    ids=["cpus", "with-another-input", "limit-removed", "network-recreated"],
)
def test_docker_changes__anything_beyond_limits_and_restart_policy_replaces(
    change: dict[str, Any], why: str
) -> None:
    before = small(**LIMITS)
    net_internal = change.pop("net_internal", True)
    upload = change.pop("upload", "one")
    after = small(net_internal=net_internal, upload=upload, **LIMITS | change)
    op, reasons = ops(docker_changes(after, applied(before)))["c"]
    assert op is Op.REPLACE, why
    assert reasons, why


def test_updated_in_place__only_changed_inputs_that_pulumi_docker_updates() -> None:
    assert "cpus" not in IN_PLACE, "ForceNew in pulumi-docker"
    assert updated_in_place({"memory": 1, "memorySwap": 1}, {"memory": 2, "memorySwap": 2})
    assert updated_in_place({}, {"memoryReservation": 64}), "a limit added is updated"
    assert not updated_in_place({"memory": 1}, {"memory": 1}), "nothing changed: same"
    assert not updated_in_place({"memory": 1}, {}), "a limit removed is replaced"
    assert not updated_in_place({"memory": 1, "tmpfs": {}}, {"memory": 2, "tmpfs": {"/t": ""}})


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [("memory", 64, 0), ("memorySwap", 64, 0), ("memoryReservation", 32, 0),
     ("cpuShares", 512, 0), ("cpuSet", "0", "")],
)  # fmt: skip
def test_updated_in_place__a_limit_set_to_zero_is_replaced(key: str, old: Any, new: Any) -> None:
    """Docker's update API (and the docker SDK before it) reads 0 or "" as "leave it as it
    is": an update would leave the old limit on the running container while the state
    recorded the new declaration. Replaced, as a limit no longer declared is."""
    swap = {"memorySwap": 128} if key == "memory" else {}  # (memory: see the next test)
    assert not updated_in_place({key: old, **swap}, {key: new, **swap})
    assert updated_in_place({key: new, **swap}, {key: old, **swap}), "positive control"


def test_updated_in_place__memory_without_a_declared_swap_limit_is_replaced() -> None:
    """Created with `memory` and no `memorySwap`, a container gets Docker's default swap limit,
    twice its memory. An update cannot give it that for the new memory: raised past twice the
    old one Docker refuses it (the swap limit must be updated with it), and below, the old swap
    limit stays. Replaced, the container gets what a create of the declaration gives."""
    assert not updated_in_place({"memory": 64}, {"memory": 256})
    assert not updated_in_place({"memory": 64}, {"memory": 96})
    assert updated_in_place({"memory": 64, "memorySwap": 64}, {"memory": 256, "memorySwap": 256})
    assert updated_in_place({"memory": 64, "memorySwap": -1}, {"memory": 96, "memorySwap": -1})


def test_updated_in_place__a_restart_policy_without_retries_is_updated() -> None:
    """The restart policy goes as one object, so no retries (0) and `no` reach the engine."""
    assert updated_in_place({"restart": "on-failure", "maxRetryCount": 5},
                            {"restart": "no", "maxRetryCount": 0})  # fmt: skip


def test_update_kwargs__every_limit_and_the_restart_policy_in_docker_units() -> None:
    (step,) = [s for s in small(**LIMITS | {"cpuSet": "0-1"}).steps if s.type == CTR]
    assert isinstance(step.spec, ContainerSpec)
    assert update_kwargs(step.spec) == {
        "mem_limit": 256 * 1024 * 1024,
        "memswap_limit": 256 * 1024 * 1024,
        "cpu_shares": 512,
        "cpuset_cpus": "0-1",
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
    }
