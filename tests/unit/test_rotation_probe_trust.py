"""Which containers infra/rotation_probe.py trusts for scripts/rotate.sh's snapshots, without
Docker: the images the local applier's state records (`recorded_state`, read only when
rotate.sh deploys with the local applier: `--applier-state`), and a container found not to be
the stack's ends the wait at once (NotTrusted is no state that settles). The containers
themselves: tests/integration/test_rotation_probe_snapshot_trust.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from infra import rotation_probe
from infra.applier.engine import INCOMPLETE
from infra.applier.state import PASSPHRASE_ENV, ResourceState, StackState, StateStore
from infra.naming import Role
from infra.pulumi_names import CONTAINER
from infra.rotation_probe import NotTrusted, ProbeError, Recorded, recorded_state

REDIS_IMAGE = "sha256:" + "r" * 64
APP_IMAGE = "sha256:" + "a" * 64
EXPORTER_IMAGE = "sha256:" + "e" * 64


def _container(name: str, outputs: dict[str, Any]) -> ResourceState:
    return ResourceState(CONTAINER, name, "id-" + name, {"name": name}, outputs)


def _save(project: Path, stack: str, app_outputs: dict[str, Any]) -> None:
    resources = {
        "urn:redis": _container(f"secure-redis-{stack}-redis", {"imageId": REDIS_IMAGE}),
        "urn:app": _container(f"secure-redis-{stack}-app", app_outputs),
        # The exporter, in which `rewrite-aof` runs (infra/naming.py EXPORTER_CONTAINER).
        "urn:exporter": _container(
            f"secure-redis-{stack}-redis-exporter", {"imageId": EXPORTER_IMAGE}
        ),
        "urn:other": _container(f"secure-redis-{stack}-exporter", {"imageId": "sha256:e"}),
    }
    StateStore(project, stack).save(StackState(stack, resources))


def _images(stack: str, project: Path) -> dict[Role, str | None] | None:
    """The image IDs `recorded_state` reads, or None when the stack has no state."""
    found = recorded_state(stack, project)
    return None if found is None else dict(found.images)


@pytest.fixture(autouse=True)
def _key_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


def test_recorded_state_images__the_state_s_images_of_redis_and_the_app(tmp_path: Path) -> None:
    _save(tmp_path, "s1", {"imageId": APP_IMAGE})
    assert _images("s1", tmp_path) == {
        Role.REDIS: REDIS_IMAGE,
        Role.APP: APP_IMAGE,
        Role.EXPORTER: EXPORTER_IMAGE,
    }


def test_recorded_state_images__an_app_an_interrupted_up_left_unfinished_has_none(
    tmp_path: Path,
) -> None:
    _save(tmp_path, "s1", {INCOMPLETE: True})
    assert _images("s1", tmp_path) == {
        Role.REDIS: REDIS_IMAGE,
        Role.APP: None,
        Role.EXPORTER: EXPORTER_IMAGE,
    }


def test_recorded_state_images__no_state_is_none__labels_only(tmp_path: Path) -> None:
    """A stack this checkout's applier never deployed: nothing recorded to check against."""
    _save(tmp_path, "s1", {"imageId": APP_IMAGE})
    assert _images("s2", tmp_path) is None


def test_recorded_state_images__a_state_that_does_not_open_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 from main (ValueError), the state's own line, no value from the state."""
    _save(tmp_path, "s1", {"imageId": APP_IMAGE})
    monkeypatch.setenv(PASSPHRASE_ENV, "a passphrase long enough to pass")
    with pytest.raises(ValueError, match=f"was encrypted differently: unset {PASSPHRASE_ENV}"):
        _images("s1", tmp_path)


def test_recorded_state__the_container_ids__none_for_an_unfinished_record(
    tmp_path: Path,
) -> None:
    """An unfinished record (an interrupted up) holds a name or an ID but no image: no ID to
    trust either (`recorded_container`, as `recorded_image`); the probe refuses it for its
    missing image, as before."""
    _save(tmp_path, "s1", {"imageId": APP_IMAGE})
    found = recorded_state("s1", tmp_path)
    assert found is not None
    assert found.containers == {
        Role.REDIS: "id-secure-redis-s1-redis",
        Role.APP: "id-secure-redis-s1-app",
        Role.EXPORTER: "id-secure-redis-s1-redis-exporter",
    }
    _save(tmp_path, "s1", {INCOMPLETE: True})
    found = recorded_state("s1", tmp_path)
    assert found is not None
    assert found.containers == {
        Role.REDIS: "id-secure-redis-s1-redis",
        Role.APP: None,
        Role.EXPORTER: "id-secure-redis-s1-redis-exporter",
    }
    assert found.images[Role.APP] is None
    assert recorded_state("s2", tmp_path) is None


class _FakeProbe:
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, stack: str, port: int, **kwargs: Any) -> None:
        _FakeProbe.made.append(kwargs)

    def snapshot(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("flag", "recorded"),
    [([], False), (["--applier-state"], True)],
    ids=["pulumi-up", "local-applier"],
)
def test_main__the_state_s_images_are_checked_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: list[str],
    recorded: bool,
) -> None:
    """Under `pulumi up` a local state, if any, did not deploy the stack: its images would
    refuse the stack's own containers, so rotate.sh passes --applier-state only when it
    deploys with the local applier."""
    monkeypatch.setattr(rotation_probe, "Probe", _FakeProbe)
    ids = {Role.REDIS: "r" * 64, Role.APP: "a" * 64}
    reads: list[str] = []

    state = Recorded(images={Role.REDIS: REDIS_IMAGE, Role.APP: APP_IMAGE}, containers=ids)

    def read(stack: str) -> Recorded:
        reads.append(stack)
        return state

    monkeypatch.setattr(rotation_probe, "recorded_state", read)
    _FakeProbe.made.clear()
    assert rotation_probe.main(["snapshot", "--stack", "dev", *flag]) == 0
    (made,) = _FakeProbe.made
    reread = made.pop("reread")
    assert made == {"recorded": state if recorded else None}
    if flag:  # the probe can read the state again, as it is when it looks (Probe.reread)
        assert reads == ["dev"]
        reread()
        assert reads == ["dev", "dev"]
    else:
        assert reread is None
        assert reads == []
    assert capsys.readouterr().out == "{}\n"


class _LookAlike:
    """A stack whose app's name is held by a container it did not make."""

    def __init__(self) -> None:
        self.snapshots = 0

    def round_trip(self) -> bool:
        return True

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        if self.snapshots > 1:
            raise AssertionError("looked again at a container found not to be the stack's")
        raise NotTrusted("secure-redis-dev-app: it is not labelled ...")


def test_wait__a_container_not_the_stack_s_ends_the_wait_at_once() -> None:
    """Exit 3 with its line (main), not "not settled" after the whole timeout: looking again
    does not make another's container the stack's."""
    probe = _LookAlike()
    with pytest.raises(NotTrusted, match="not labelled"):
        rotation_probe._wait(probe, {}, timeout=600)  # type: ignore[arg-type]
    assert probe.snapshots == 1


class _NoAppProbe:
    """What Probe finds with the app container gone: served_issuer cannot ask anyone."""

    def __init__(self, stack: str, port: int, **kwargs: Any) -> None:
        self.stack = stack

    def served_issuer(self, app_image: str | None) -> str | None:
        raise ProbeError(f"secure-redis-{self.stack}-app: 404 Client Error: No such container")


def test_retire_refusal__app_gone__the_line_s_way_on_lets_the_up_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """infra/apply.py `_retire_refusal` with the app container gone: refused, and the way on
    the line names is one that works. `docker restart` of Redis (what it said before) leaves
    the app gone and the up refused the same; `docker stop` of Redis is not asked."""
    from infra import apply  # noqa: PLC0415 - loads the applier (seconds)

    monkeypatch.setattr(apply, "_staying_cas", lambda rendered, state: ["CA2"])
    monkeypatch.setattr(rotation_probe, "Probe", _NoAppProbe)
    redis = SimpleNamespace(status="running")
    applier = SimpleNamespace(
        client=SimpleNamespace(containers=SimpleNamespace(get=lambda n: redis))
    )
    rendered = SimpleNamespace(stack="dev", settings=SimpleNamespace(redis_port=6379))

    def refusal() -> str | None:
        return apply._retire_refusal(rendered, None, applier)  # type: ignore[arg-type]

    line = refusal()
    assert line is not None
    assert line.startswith("cannot tell which CA's certificate Redis serves (secure-redis-dev-app")
    assert "nothing was changed" in line
    assert "`docker stop secure-redis-dev-redis`" in line
    assert "docker restart" not in line
    redis.status = "running"  # after a restart: the app is still gone, refused the same
    assert refusal() == line
    redis.status = "exited"  # after `docker stop`: not asked, the up goes on
    assert refusal() is None
