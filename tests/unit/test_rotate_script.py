"""scripts/rotate.sh and its helpers: argument checks, the settings file it edits, and the
decisions of the probe that tells when every consumer switched."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import docker.errors
import pytest

from infra import rotation_probe
from infra.rotation_probe import (
    acl_fingerprints,
    expected_changes,
    fingerprint,
    restarted,
    unsettled,
)
from infra.settings import REPO_ROOT, SettingsError, load_settings, load_stack_file
from infra.stack_config import StackConfigError, get_setting, set_setting, set_value
from tests.support.rotation_snapshots import snapshot as _snapshot


def rotate(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "rotate.sh"), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            (),
            "usage: scripts/rotate.sh STACK "
            "(certs|passwords|data-key|ca|api-token|api-token-retire|all)",
        ),
        (("dev",), "usage: scripts/rotate.sh STACK"),
        (("dev", "keys"), "unknown rotation 'keys'"),
        (("staging-eu", "certs"), "Pulumi.staging-eu.yaml does not exist"),
        (("../etc", "certs"), "'../etc' is not a stack name"),
        (("Dev", "certs"), "'Dev' is not a stack name: 1-31 lowercase letters"),
    ],
    ids=["nothing", "no-kind", "unknown-kind", "unknown-stack", "bad-stack-name", "capital"],
)
def test_rotate__refuses_bad_arguments_before_touching_anything(
    argv: tuple[str, ...], message: str
) -> None:
    before = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    result = rotate(*argv)
    assert result.returncode == 1
    assert message in result.stderr
    assert (REPO_ROOT / "Pulumi.dev.yaml").read_text() == before


def test_rotate__help_names_every_rotation() -> None:
    result = rotate("--help")
    assert result.returncode == 0
    for kind in ("certs", "passwords", "data-key", "ca", "api-token", "api-token-retire", "all"):
        assert f"  {kind}" in result.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_rotate__is_shellcheck_clean() -> None:
    result = subprocess.run(
        ["shellcheck", "-x", "-P", "SCRIPTDIR", "rotate.sh"],
        cwd=REPO_ROOT / "scripts",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


# --- the settings file both deployers read ---------------------------------------------------

STACK_FILE = """\
# comment kept
config:
  secure-redis:environment: development
  # another comment
  secure-redis:appHostPort: 18080
"""


def test_set_value__replaces_the_line_and_keeps_comments() -> None:
    text = set_value(STACK_FILE, "appHostPort", "18090")
    assert text == STACK_FILE.replace("18080", "18090")


def test_set_value__adds_a_missing_key_inside_config() -> None:
    text = set_value(STACK_FILE + "\n", "dataKeyGeneration", "2")
    assert "  secure-redis:dataKeyGeneration: 2\n" in text
    assert text.index("dataKeyGeneration") > text.index("appHostPort")
    assert text.startswith("# comment kept\nconfig:\n")


def test_set_value__creates_config_when_there_is_none() -> None:
    assert set_value("name: x\n", "caRolloverGeneration", "1") == (
        "name: x\nconfig:\n  secure-redis:caRolloverGeneration: 1\n"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_FILE)
    return tmp_path


def test_set_setting__is_read_back_by_the_settings_loader(project: Path) -> None:
    set_setting("dev", "passwordRotationGeneration", "3", project)
    settings = load_settings("dev", load_stack_file("dev", project))
    assert settings.password_rotation_generation == 3
    assert get_setting("dev", "passwordRotationGeneration", project) == "3"


def test_get_setting__is_the_profile_default_when_unset(project: Path) -> None:
    assert get_setting("dev", "dataKeyGeneration", project) == "1"
    assert get_setting("dev", "caRolloverGeneration", project) == "0"


def test_set_setting__refuses_unknown_keys_and_bad_values_without_writing(project: Path) -> None:
    with pytest.raises(StackConfigError, match="not a setting"):
        set_setting("dev", "caGeneration", "1", project)
    with pytest.raises(SettingsError, match="caRolloverGeneration"):
        set_setting("dev", "caRolloverGeneration", "-1", project)
    assert (project / "Pulumi.dev.yaml").read_text() == STACK_FILE


# --- when a rotation has settled ------------------------------------------------------------


def test_acl_fingerprints__per_user_without_the_hash_itself() -> None:
    acl = "user default off -@all\nuser app on #aa #bb ~cache:* -@all\n"
    assert acl_fingerprints(acl) == {"default": [], "app": [fingerprint("aa"), fingerprint("bb")]}
    assert "aa" not in str(acl_fingerprints(acl))


def test_unsettled__a_settled_stack_waits_for_nothing() -> None:
    assert unsettled(_snapshot(), _snapshot()) == []


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (_snapshot(server_serial="A2"), "Redis does not serve the certificate in its volume"),
        (_snapshot(app_password="p2"), "password file is not among the ACL's"),
        (_snapshot(app_cert_issuer=None), "does not trust the CA of the app's certificate"),
        (_snapshot(app_trusts=["CA1", "CA2"]), "trust different CAs"),
        (_snapshot(app_material="..rev2"), "has not reloaded its new files"),
        (_snapshot(app_backend="memory"), "memory fallback"),
    ],
    ids=[
        "redis-not-reloaded",
        "password",
        "untrusted-client",
        "bundles-differ",
        "app-reload",
        "degraded",
    ],
)
def test_unsettled__names_what_it_waits_for(now: dict[str, Any], reason: str) -> None:
    assert any(reason in r for r in unsettled(_snapshot(), now))


def test_unsettled__an_app_without_the_reload_counter_is_not_waited_on() -> None:
    before = _snapshot(material_reloads=None)
    assert unsettled(before, _snapshot(app_material="..rev2", material_reloads=None)) == []


def test_restarted__names_a_replaced_or_restarted_consumer_in_words() -> None:
    now = _snapshot(
        containers={**_snapshot()["containers"], "redis": {"id": "r2", "startedAt": "t1"}}
    )
    (problem,) = restarted(_snapshot(), now)
    assert problem == (
        "Redis container was replaced while the rotation ran (container r1 started t0, now r2 "
        "started t1)"
    )
    again = _snapshot(
        containers={**_snapshot()["containers"], "app": {"id": "a1", "startedAt": "t1"}}
    )
    (problem,) = restarted(_snapshot(), again)
    assert problem == (
        "the app container was restarted while the rotation ran (container a1 started t0, again t1)"
    )
    assert restarted(_snapshot(), _snapshot()) == []


class _RestartedApp:
    """The app restarted by `docker restart` during a step, after the up wrote its files: it
    read them at start, so it uses the new material, and its reload counter began again."""

    def __init__(self, took: bool) -> None:
        self.took = took

    def round_trip(self) -> bool:
        return True

    def snapshot(self) -> dict[str, Any]:
        return _snapshot(
            containers={
                "redis": {"id": "r1", "startedAt": "t0"},
                "app": {"id": "a1", "startedAt": "t9"},
            },
            app_material="..rev2",
            material_reloads=0,
            **({} if self.took else {"app_password": "p9"}),
        )


def test_wait__a_consumer_restarted_by_someone_else_passes_a_step_that_took(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found on s90, 2026-12-03: `docker restart` of the app during `rotate.sh certs` failed
    the step with a Python dict and no way on, though the up had taken."""
    code = rotation_probe._wait(_RestartedApp(took=True), _snapshot(), timeout=5)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "rotate: warning: the app container was restarted while the rotation ran (container a1 "
        f"started t0, again t9); {rotation_probe.RESTART_TOOK}"
    ) in err
    assert "{" not in err


def test_wait__a_restart_and_a_step_that_did_not_take_name_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = rotation_probe._wait(_RestartedApp(took=False), _snapshot(), timeout=0.01)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert code == 1
    assert "rotate: error: the app container was restarted while the rotation ran" in err
    assert "not settled after 0s: the app's password file is not among the ACL's" in err
    assert "{" not in err


def test_report__a_restart_by_someone_else_is_a_warning_when_the_rotation_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README, Exit codes: 0 done. The certificates were renewed; the app's restart is named."""
    after = _snapshot(
        containers={
            "redis": {"id": "r1", "startedAt": "t0"},
            "app": {"id": "a1", "startedAt": "t9"},
        },
        server_serial="A2",
        served_serial="A2",
        app_cert_serial="B2",
    )

    class Renewed:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def snapshot(self) -> dict[str, Any]:
            return after

    monkeypatch.setattr(rotation_probe, "Probe", Renewed)
    before = tmp_path / "before.json"
    before.write_text(json.dumps(_snapshot()))
    code = rotation_probe.main(
        ["report", "--stack", "dev", "--before", str(before), "--kind", "certs"]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "rotate: warning: the app container was restarted while the rotation ran" in err
    assert "error" not in err


def test_expected_changes__each_kind_checks_its_own_material() -> None:
    before = _snapshot()
    certs = _snapshot(server_serial="A2", served_serial="A2", app_cert_serial="B2")
    assert expected_changes("certs", before, certs) == []
    assert expected_changes("certs", before, before)
    passwords = _snapshot(
        acl={"default": [], "app": ["p2"], "healthcheck": ["h2"], "reload": ["r2"]}
    )
    assert expected_changes("passwords", before, passwords) == []
    still_rotating = _snapshot(acl={"app": ["p2", "p1"], "healthcheck": ["h2"], "reload": ["r2"]})
    assert expected_changes("passwords", before, still_rotating)
    assert expected_changes("data-key", before, _snapshot(primary_key_id="k2")) == []
    assert expected_changes(
        "data-key", before, _snapshot(primary_key_id="k2", previous_key_ids=["k1"])
    )
    rolled = _snapshot(
        server_serial="A2", app_cert_serial="B2", server_issuer="CA2", redis_trusts=["CA2"]
    )
    assert expected_changes("ca", before, rolled) == []
    assert expected_changes("ca", before, _snapshot(**{**rolled, "redis_trusts": ["CA2", "CA1"]}))


def test_expected_changes__the_api_token_is_added_then_retired_in_two_steps() -> None:
    before = _snapshot()
    added = _snapshot(api_token="t2", api_previous_tokens=1)
    retired = _snapshot(api_token="t2", api_previous_tokens=0)
    assert expected_changes("api-token", before, added) == []
    assert expected_changes("api-token", before, before)  # nothing new
    assert expected_changes("api-token", before, retired)  # the old one already refused
    assert expected_changes("api-token-retire", added, retired) == []
    assert expected_changes("api-token-retire", added, added)  # the old one still accepted
    assert expected_changes("api-token-retire", added, _snapshot(api_token="t3"))
    # Every other rotation leaves the token alone.
    certs = _snapshot(server_serial="A2", served_serial="A2", app_cert_serial="B2")
    assert expected_changes("certs", before, certs) == []


def test_expected_changes__all_includes_the_api_token() -> None:
    everything = _snapshot(
        server_serial="A2",
        app_cert_serial="B2",
        server_issuer="CA2",
        redis_trusts=["CA2"],
        acl={"default": [], "app": ["p2"], "healthcheck": ["h2"], "reload": ["r2"]},
        primary_key_id="k2",
    )
    assert expected_changes("all", _snapshot(), everything) == [
        "the API token did not rotate to one new token with the old one retired"
    ]
    assert expected_changes("all", _snapshot(), {**everything, "api_token": "t2"}) == []


class _Container:
    attrs: ClassVar[dict[str, Any]] = {
        "State": {"StartedAt": "t1", "FinishedAt": "t2", "ExitCode": 0}
    }

    def logs(self, tail: int) -> bytes:
        return b"redis-reload: CONFIG SET OK\n"


class _Containers:
    def get(self, name: str) -> _Container:
        if name.endswith("redis-init"):
            raise docker.errors.NotFound("gone")
        return _Container()


def test_reload_evidence__names_the_writer_and_the_job_with_their_times() -> None:
    probe = rotation_probe.Probe.__new__(rotation_probe.Probe)
    probe.stack = "dev"
    probe.client = SimpleNamespace(containers=_Containers())
    lines = probe.reload_evidence()
    assert lines[0].startswith("secure-redis-dev-redis-init: not readable")
    assert lines[1] == (
        "secure-redis-dev-reload-tls: started t1, finished t2, exit 0, "
        "log: redis-reload: CONFIG SET OK"
    )


class _StaleServer:
    """A stack whose Redis keeps presenting an older certificate than its volume holds."""

    def round_trip(self) -> bool:
        return True

    def snapshot(self) -> dict[str, Any]:
        return _snapshot(server_serial="A2")  # still serving A1

    def reload_evidence(self) -> list[str]:
        return ["secure-redis-dev-reload-tls: exit 0"]


def test_wait__a_certificate_that_is_not_served_prints_the_reloads_evidence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stale = _StaleServer()
    assert rotation_probe._wait(stale, _snapshot(), timeout=0.01) == 1  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert f"not settled after 0s: {rotation_probe.NOT_SERVED}" in err
    assert (
        "rotate: evidence: serial served to a new connection A1, in Redis's volume A2; "
        "before this up: served A1, volume A1"
    ) in err, "which certificate is served: the old one (the reload did not take) or another"
    assert "rotate: evidence: secure-redis-dev-reload-tls: exit 0" in err


def test_unfinished__names_each_rotation_a_snapshot_shows_half_done() -> None:
    assert rotation_probe.unfinished(_snapshot()) == {}
    found = rotation_probe.unfinished(
        _snapshot(
            previous_key_ids=["k1"],
            acl={"default": [], "app": ["p2", "p1"], "healthcheck": ["h1"], "reload": ["r1"]},
            redis_trusts=["CA2", "CA1"],
        )
    )
    assert set(found) == {"data-key", "passwords", "ca"}
    assert "1 previous data key(s)" in found["data-key"]
    assert found["passwords"] == "ACL users with two passwords: app"
    # An API token rotation waits for its retire (scripts/rotate.sh S api-token-retire).
    assert rotation_probe.unfinished(_snapshot(api_previous_tokens=1)) == {
        "api-token": "the app still accepts 1 earlier API token(s) beside the current one"
    }


def test_expected_changes__a_resumed_rotation_counts_when_it_ends_finished() -> None:
    """rotate.sh finishes a rotation it finds half done: the new key or CA came before the
    snapshot it compares with, so only the finished state is asked of it."""
    mid_key = _snapshot(primary_key_id="k2", previous_key_ids=["k1"])
    assert expected_changes("data-key", mid_key, _snapshot(primary_key_id="k2")) == []
    assert expected_changes("data-key", mid_key, mid_key), "the old key is still read"
    promoted = _snapshot(server_issuer="CA2", redis_trusts=["CA2", "CA1"], app_cert_serial="B2")
    finished = _snapshot(
        server_issuer="CA2",
        app_cert_issuer="CA2",
        redis_trusts=["CA2"],
        server_serial="A2",
        app_cert_serial="B3",
    )
    assert expected_changes("ca", promoted, finished) == []
    assert expected_changes("ca", promoted, promoted), "two CAs are still trusted"


def test_expected_changes__a_rollover_resumed_at_promoted_needs_no_new_leaves() -> None:
    """Found promoted (rotate.sh ca interrupted after its second up), the leaves were already
    issued by the new CA; the one up left retires the old CA and renews nothing. Before, the
    report then said neither certificate was renewed and rotate.sh failed a finished rollover."""
    issued_by_new = {
        "server_serial": "A2",
        "app_cert_serial": "B2",
        "server_issuer": "CA2",
        "app_cert_issuer": "CA2",
    }
    promoted = _snapshot(**issued_by_new, redis_trusts=["CA2", "CA1"], app_trusts=["CA2", "CA1"])
    finished = _snapshot(**issued_by_new, redis_trusts=["CA2"], app_trusts=["CA2"])
    assert expected_changes("ca", promoted, finished) == []
    # A leaf the CA left did not issue is not a finished rollover, resumed or not.
    stale = _snapshot(**{**issued_by_new, "app_cert_issuer": None}, redis_trusts=["CA2"])
    assert expected_changes("ca", promoted, stale) == [
        "the CA did not roll over to a single new CA"
    ]
    # `certs` (in `all`) still asks for new leaves, from the one CA left.
    assert expected_changes("all", promoted, finished)[:2] == [
        "the server certificate was not renewed",
        "the app's client certificate was not renewed",
    ]
    renewed = _snapshot(
        **{**issued_by_new, "server_serial": "A3", "app_cert_serial": "B3"},
        redis_trusts=["CA2"],
        app_trusts=["CA2"],
    )
    assert not [m for m in expected_changes("all", promoted, renewed) if "CA" in m or "cert" in m]
    # Resumed at the retire step: the new CA issued every certificate before the snapshot,
    # and retiring the old one issues nothing (seen on a deployed stack).
    retired = _snapshot(**{**promoted, "redis_trusts": ["CA2"], "app_trusts": ["CA2"]})
    assert expected_changes("ca", promoted, retired) == []


def test_unfinished_cli__what_rotate_sh_reads_needs_no_docker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts/rotate.sh asks `unfinished --kind K --before SNAPSHOT`: the reason, or nothing."""

    def no_docker(*_args: object) -> None:
        raise AssertionError("unfinished reads the snapshot file only")

    monkeypatch.setattr(rotation_probe, "Probe", no_docker)
    snapshot = tmp_path / "before.json"
    snapshot.write_text(json.dumps(_snapshot(previous_key_ids=["k1"])))

    def ask(*kind: str) -> str:
        argv = ["unfinished", "--stack", "dev", *kind, "--before", str(snapshot)]
        assert rotation_probe.main(argv) == 0
        return capsys.readouterr().out

    assert "rotation pass has not finished" in ask("--kind", "data-key")
    assert ask("--kind", "passwords") == ""
    assert ask().startswith("data-key: the app still reads 1 previous data key(s)")


@pytest.mark.parametrize(
    ("served_issuer", "refused", "way_on"),
    [
        # A promote whose TLS reload took, and any other state: the CA issuing the volume's
        # server certificate is the one Redis serves from.
        ("CA2", False, ""),
        # The promote's reload did not take: Redis still serves the old CA's certificate.
        ("CA1", True, "docker start --attach secure-redis-dev-reload-tls"),
        # Its volume no longer trusts the CA Redis serves from (a retire ran after it).
        (None, True, "docker restart secure-redis-dev-redis"),
    ],
    ids=["reloaded", "not-reloaded", "retired-anyway"],
)
def test_guard_cli__refuses_an_up_while_redis_serves_another_ca_than_its_volumes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    served_issuer: str | None,
    refused: bool,
    way_on: str,
) -> None:
    """scripts/rotate.sh asks `guard --before SNAPSHOT` before each up: exit 3 and one line
    when the up would retire the CA Redis still serves from (docs/day2.md)."""
    promoted = _snapshot(
        redis_trusts=["CA2", "CA1"], server_issuer="CA2", served_issuer=served_issuer
    )
    snapshot = tmp_path / "step.json"
    snapshot.write_text(json.dumps(promoted))
    code = rotation_probe.main(["guard", "--stack", "dev", "--before", str(snapshot)])
    err = capsys.readouterr().err
    assert code == (3 if refused else 0)
    assert err.count("\n") == int(refused)
    assert way_on in err


# --- progress of the long looks (newuser16: 25-35 s per step with no line) -------------------


class _Recorder(io.StringIO):
    """stderr, recording what the progress thread writes; `seen` is set once a line holds
    `awaited`."""

    def __init__(self, awaited: str) -> None:
        super().__init__()
        self.awaited = awaited
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.awaited in self.getvalue():
            self.seen.set()
        return written


class _SlowToSwitch:
    """The app's password is not among the ACL's at the first look; the second look answers
    only once a progress line named that (a guard of 60 s, never reached when it works)."""

    def __init__(self, stderr: _Recorder) -> None:
        self.stderr = stderr
        self.looks = 0

    def round_trip(self) -> bool:
        return True

    def snapshot(self) -> dict[str, Any]:
        self.looks += 1
        if self.looks == 1:
            return _snapshot(app_password="p9")
        assert self.stderr.seen.wait(60), self.stderr.getvalue()
        return _snapshot()


def test_wait__says_every_so_often_what_it_still_waits_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = _Recorder("password file is not among")
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(rotation_probe, "PROGRESS_EVERY_S", 0.01, raising=False)
    code = rotation_probe._wait(_SlowToSwitch(stderr), _snapshot(), timeout=600)  # type: ignore[arg-type]
    assert code == 0, stderr.getvalue()
    lines = [line for line in stderr.getvalue().splitlines() if "the app's password" in line]
    assert lines, stderr.getvalue()
    assert re.fullmatch(
        r"rotate: still waiting until Redis and the app use what the up gave them "
        r"\(\d+ s so far\): the app's password file is not among the ACL's app passwords",
        lines[0],
    ), lines[0]
    assert "p9" not in stderr.getvalue()


def test_snapshot_cli__a_slow_look_says_it_is_still_reading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout stays the snapshot alone (rotate.sh writes it to a file); the line is on stderr."""
    stderr = _Recorder("rotate: still reading what Redis and the app use")

    class Slow:
        def snapshot(self) -> dict[str, Any]:
            assert stderr.seen.wait(60), stderr.getvalue()
            return _snapshot()

    monkeypatch.setattr(rotation_probe, "PROGRESS_EVERY_S", 0.01, raising=False)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert rotation_probe._snapshot(Slow(), "dev", applier_state=False) == 0  # type: ignore[arg-type]
    assert json.loads(capsys.readouterr().out) == _snapshot()
    assert re.search(
        r"^rotate: still reading what Redis and the app use \(\d+ s so far\)$",
        stderr.getvalue(),
        re.MULTILINE,
    ), stderr.getvalue()


def test_progress__says_nothing_when_the_look_ends_first() -> None:
    out = io.StringIO()
    with rotation_probe.Progress("reading", every=3600, out=out):
        pass
    assert out.getvalue() == ""
