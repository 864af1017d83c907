"""`python -m policies.check`: output formats, exit codes, and unusable input never passing."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.settings import REPO_ROOT
from policies import strictness
from policies.analyzer import PackServer
from policies.check import lowered_mandatory, run
from policies.rules._model import CONTAINER
from tests.policy import foreign

PLAINTEXT_REDIS: list[dict[str, Any]] = [{"type": CONTAINER, "name": "kv",
                    "props": {"image": "redis:7", "ports": [{"internal": 6379}]}}]  # fmt: skip

PROG = "python -m policies.check"


Check = Callable[..., int]


@pytest.fixture
def check(pack: PackServer) -> Check:
    """`run` on the session's pack (tests/policy/conftest.py) rather than on one it starts
    per call (a second each); `run`'s own start is tested by the tests that call it, and by
    the subprocess ones (`python -m policies.check`)."""
    return functools.partial(run, pack=pack)


def _args(path: Path, *more: str) -> list[str]:
    # qa unless the test names a stack: an option given twice is refused (infra/cli.py).
    stack = [] if "--stack-name" in more else ["--stack-name", "qa"]
    return ["--resources", str(path), *stack, *more]


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "resources.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_secure_resources__exit_0_with_json_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run(_args(_write(tmp_path, foreign.raw()), "--stack-name", "prod", "--json"), out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(line["level"] == "advisory" for line in lines)


def test_insecure_resources__exit_1_one_json_line_per_violation(
    tmp_path: Path, check: Check
) -> None:
    out = io.StringIO()
    assert check(_args(_write(tmp_path, PLAINTEXT_REDIS), "--json"), out) == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {"policy", "resource", "message", "level"} <= set(lines[0])
    policies = {line["policy"] for line in lines if line["level"] == "mandatory"}
    assert {"redis-tls-only", "network-redis-no-published-port"} <= policies
    assert all(line["resource"] == "kv" for line in lines)


def test_table_output__names_config_counts_and_violations(tmp_path: Path, check: Check) -> None:
    out = io.StringIO()
    assert check(_args(_write(tmp_path, PLAINTEXT_REDIS)), out) == 1
    text = out.getvalue()
    assert "production config" in text  # it declares no environment: the strictest
    assert "mandatory  redis-tls-only" in text


def test_table__one_row_per_wrong_typed_property_however_many_policies_need_it(
    tmp_path: Path,
    check: Check,
) -> None:
    """A Redis container's `command` and `envs` of the wrong type: every policy that needs
    them still fails (fail closed, as under the engine), but the table says each property
    once, with what is wrong, where, what it should be, and how many policies it blocks (red
    before: 39 rows, one per policy)."""
    raw = foreign.raw()
    cache = next(item for item in raw if item["name"] == "cache")["props"]
    cache.update(command="redis-server /secrets/redis.conf", envs={"A": "b"})
    out = io.StringIO()
    assert check(_args(_write(tmp_path, raw), "--stack-name", "prod"), out) == 1
    rows = [line for line in out.getvalue().splitlines() if "cannot read it" in line]
    assert len(rows) == 2, out.getvalue()
    command, envs = sorted(rows)
    assert "Container cache (shop-prod-cache): command must be a list, not a string" in command
    assert "Container cache (shop-prod-cache): envs must be a list, not an object" in envs
    for row in rows:
        assert row.startswith("mandatory  ")
        assert " policies (" in row
        assert ") cannot confirm it is safe" in row
        assert "redis-tls-only" in command
        assert row.endswith("Fix the property's type.")
    # JSON lines keep one line per policy: a machine reads each policy's verdict.
    out = io.StringIO()
    assert check(_args(_write(tmp_path, raw), "--stack-name", "prod", "--json"), out) == 1
    policies = [json.loads(line)["policy"] for line in out.getvalue().splitlines()]
    assert len([p for p in policies if p.startswith("redis-")]) > 10


def test_table_header__names_the_config_given_as_the_users_not_the_environments(
    tmp_path: Path,
    check: Check,
) -> None:
    """`--config FILE`: the header said "production config FILE" (red before); the
    environment's config is the default only."""
    config = tmp_path / "mine.json"
    config.write_text(json.dumps({"redis-tls-only": "mandatory"}))
    out = io.StringIO()
    check(_args(_write(tmp_path, PLAINTEXT_REDIS), "--config", str(config)), out)
    header = out.getvalue().splitlines()[0]
    assert f"(1 resources, config {config})" in header, header
    assert "production" not in header
    out = io.StringIO()
    check(_args(_write(tmp_path, PLAINTEXT_REDIS)), out)
    assert "production config " in out.getvalue().splitlines()[0]


def test_stack__renders_the_program_and_uses_its_config() -> None:
    out = io.StringIO()
    assert run(["--stack", "prod"], out) == 0
    assert "config" in out.getvalue()
    assert "prod.json" in out.getvalue()
    assert "0 mandatory" in out.getvalue()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param("{not json", "not valid JSON", id="malformed"),
        pytest.param([], "no resources", id="empty-list"),
        pytest.param({"type": "x"}, "JSON list", id="not-a-list"),
        pytest.param([{"name": "a", "props": {}}], 'no "type"', id="record-without-type"),
        pytest.param([{"type": "t", "props": {}}], 'no "name"', id="record-without-name"),
        pytest.param([{"type": 5, "name": "a"}], '"type" must be a JSON string, got a number',
                     id="type-a-number"),
        pytest.param([{"type": "t", "name": ["a"]}], '"name" must be a JSON string, got a list',
                     id="name-a-list"),
        pytest.param([{"type": "t", "name": "a", "props": []}], "must be a JSON object",
                     id="props-not-object"),
        pytest.param(["x"], "JSON object", id="record-not-object"),
        pytest.param([{"type": "t", "name": "a", "urn": "arn:aws:x"}], "urn:pulumi:",
                     id="malformed-urn"),
        pytest.param([{"type": "t", "name": "a"}, {"type": "t", "name": "a"}], "same URN",
                     id="duplicate"),
        pytest.param('[{"type": "t", "name": "a", "props": {"memory": 1e400}}]',
                     'record 0 (a): props.memory is not a finite number', id="number-overflow"),
        pytest.param('[{"type": "t", "name": "a", "props": {"ports": [{"internal": NaN}]}}]',
                     "props.ports[0].internal is not a finite number", id="nan-literal"),
        pytest.param('[{"type": "t", "name": "a", "props": {"cpus": -Infinity}}]',
                     "props.cpus is not a finite number", id="infinity-literal"),
        pytest.param('[{"type": "t", "name": "a", "props": {"x": ' + "[" * 400 + "]" * 400
                     + "}}]", "record 0 (a): props.x[0][0]", id="props-nested-400-deep"),
        pytest.param("[" * 100_000 + "]" * 100_000, "nests lists or objects too deeply",
                     id="file-nested-100000-deep"),
        pytest.param([{"type": "t", "name": "a",
                       "options": {"additionalSecretOutputs": {"envs": 1}}}],
                     "options.additionalSecretOutputs must be a list of property names",
                     id="secret-outputs-object"),
        pytest.param([{"type": "t", "name": "a", "options": {"ignoreChanges": "envs"}}],
                     "options.ignoreChanges must be a list of property names",
                     id="ignore-changes-string"),
        pytest.param([{"type": "t", "name": "a", "options": {"protect": "false"}}],
                     "options.protect must be true or false", id="protect-string"),
        # One URN where a list belongs was sent letter by letter: a StackReference among
        # the dependencies went unseen by secret-stack-reference-isolated.
        pytest.param([{"type": "t", "name": "a", "options": {"dependencies":
                       "urn:pulumi:dev::p::pulumi:pulumi:StackReference::other"}}],
                     "options.dependencies must be a list of URNs", id="dependencies-string"),
        pytest.param([{"type": "t", "name": "a", "options": {"propertyDependencies": {
                       "networksAdvanced": "urn:pulumi:dev::p::docker:index/network:Network::n"}}}],
                     "options.propertyDependencies must map property names to lists of URNs",
                     id="property-dependencies-string"),
        # An integer literal past a double's range: protobuf cannot carry it (OverflowError).
        pytest.param('[{"type": "t", "name": "a", "props": {"memory": 1' + "0" * 400 + "}}]",
                     "record 0 (a): props.memory is not a finite number", id="integer-overflow"),
        # Half a UTF-16 pair: no UTF-8 can carry it (UnicodeEncodeError in the pack's wire).
        pytest.param('[{"type": "t", "name": "a", "props": {"image": "redis\\ud800"}}]',
                     "record 0 (a): props.image holds a lone surrogate", id="lone-surrogate"),
        pytest.param('[{"type": "t", "name": "a", "props": {"envs": {"K\\udc00": "v"}}}]',
                     "props.envs (a key) holds a lone surrogate", id="lone-surrogate-in-a-key"),
        pytest.param('[{"type": "t", "name": "a\\udc00"}]', '"name" holds a lone surrogate',
                     id="lone-surrogate-in-a-name"),
        pytest.param('[{"type": "t", "name": "a", "options": {"parent": "p\\ud800"}}]',
                     "options.parent holds a lone surrogate", id="lone-surrogate-in-options"),
    ],
)  # fmt: skip
def test_unusable_input__exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, error: str, check: Check
) -> None:
    out = io.StringIO()
    assert check(_args(_write(tmp_path, content)), out) == 2
    assert out.getvalue() == ""
    stderr = capsys.readouterr().err
    assert error in stderr
    assert "Traceback" not in stderr


def test_wrong_typed_props__judged_by_the_pack_not_a_checker_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    """`envs` as an object is the envs rules' violation (docs/policy.md), also where the checker
    reads ENVIRONMENT from it to pick the config: an unreadable declaration counts as production."""
    records = [{"type": CONTAINER, "name": "kv",
                "props": {"image": "redis:7", "envs": {"ENVIRONMENT": "development"}}}]  # fmt: skip
    out = io.StringIO()
    assert check(_args(_write(tmp_path, records)), out) == 1
    assert "error" not in capsys.readouterr().err
    assert "production config" in out.getvalue()
    assert "envs must be a list" in out.getvalue()


def test_records_without_urn_need_a_stack_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    path = _write(tmp_path, PLAINTEXT_REDIS)
    assert check(["--resources", str(path)], io.StringIO()) == 2
    assert "--stack-name" in capsys.readouterr().err


def test_unreadable_file__exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    assert check(_args(tmp_path / "missing.json"), io.StringIO()) == 2
    assert "cannot read" in capsys.readouterr().err


def _special_file(tmp_path: Path, kind: str) -> Path:
    """A path that is not a small regular file: each would block, exhaust memory or fail."""
    if kind == "fifo":
        path = tmp_path / "fifo.json"
        os.mkfifo(path)  # no writer: a plain open() blocks forever
        return path
    if kind == "directory":
        return tmp_path
    if kind == "oversized":
        path = tmp_path / "huge.json"
        with path.open("wb") as handle:
            handle.truncate(65 << 20)  # sparse: past the resources cap, no disk used
        return path
    return Path("/dev/zero")  # endless: a plain read() runs until memory is gone


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        pytest.param("fifo", "is not a regular file (a pipe, socket or device)", id="fifo"),
        pytest.param("device", "is not a regular file (a pipe, socket or device)", id="dev-zero"),
        pytest.param("directory", "is a directory; pass the file itself", id="directory"),
        pytest.param("oversized", "is larger than 64 MiB", id="oversized"),
    ],
)
def test_resources_that_are_not_a_regular_file__exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, error: str, check: Check
) -> None:
    assert check(_args(_special_file(tmp_path, kind)), io.StringIO()) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"{PROG}: error: resources file ")
    assert error in stderr
    assert stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        pytest.param("fifo", "is not a regular file (a pipe, socket or device)", id="fifo"),
        pytest.param("device", "is not a regular file (a pipe, socket or device)", id="dev-zero"),
        pytest.param("directory", "is a directory; pass the file itself", id="directory"),
    ],
)
def test_policy_config_that_is_not_a_regular_file__exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, error: str, check: Check
) -> None:
    resources = _write(tmp_path, PLAINTEXT_REDIS)
    config = _special_file(tmp_path, kind)
    assert check(_args(resources, "--config", str(config)), io.StringIO()) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"{PROG}: error: policy config ")
    assert error in stderr
    assert stderr.count("\n") == 1


def test_policy_config_nested_too_deep__exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    config = tmp_path / "config.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    resources = _write(tmp_path, PLAINTEXT_REDIS)
    assert check(_args(resources, "--config", str(config)), io.StringIO()) == 2
    stderr = capsys.readouterr().err
    assert "nests lists or objects too deeply to read" in stderr
    assert "RecursionError" not in stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("--stack-name", ""), ("--stack-name", "a\nb"), ("--stack-name", ".."),
     ("--project", "x\x1b[31mRED"), ("--project", "")],
    ids=["stack-empty", "stack-newline", "stack-dotdot", "project-escape", "project-empty"],
)  # fmt: skip
def test_bad_stack_name_or_project_option__names_the_option_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, check: Check
) -> None:
    argv = _args(_write(tmp_path, PLAINTEXT_REDIS), option, value)
    assert check(argv, io.StringIO()) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{PROG}: error: {option} {value!r} is not a Pulumi name")
    assert "\x1b" not in line


def test_unknown_stack__exit_2(capsys: pytest.CaptureFixture[str], check: Check) -> None:
    assert check(["--stack", "no-such-stack"], io.StringIO()) == 2
    assert "Pulumi.no-such-stack.yaml" in capsys.readouterr().err


def test_bad_policy_config__exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis-tls-protocols-modern": {"minimumVersion": "SSLv3"}}))
    resources = _write(tmp_path, PLAINTEXT_REDIS)
    assert check(_args(resources, "--config", str(config)), io.StringIO()) == 2
    assert "minimumVersion" in capsys.readouterr().err


def test_module_entry_point__exit_status_and_no_traceback(tmp_path: Path) -> None:
    resources = _write(tmp_path, PLAINTEXT_REDIS)
    done = subprocess.run(
        [sys.executable, "-m", "policies.check", *_args(resources, "--json")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["resource"] == "kv"
    broken = subprocess.run(
        [sys.executable, "-m", "policies.check", "--resources", str(tmp_path / "nope.json")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr


@pytest.mark.parametrize(
    ("content", "error", "fix"),
    [
        pytest.param(b"config:\n  secure-redis:environment: [unclosed\n", "is not valid YAML",
                     "; fix the YAML\n",
                     id="bad-yaml"),
        pytest.param(b"config:\n  secure-redis:environment: \xff\xfe\n", "is not UTF-8 text",
                     "; save it as UTF-8\n", id="not-utf8"),
    ],
)  # fmt: skip
def test_unreadable_stack_file__one_line_naming_the_program_and_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    error: str,
    fix: str,
    check: Check,
) -> None:
    """policies.check and policies.strictness (scripts/pulumi-deploy.sh relays it) alike:
    before, a bare `error: Pulumi.qa.yaml is not valid YAML (...)`, naming neither the program
    nor what to do."""
    (tmp_path / "Pulumi.qa.yaml").write_bytes(content)
    monkeypatch.setattr(strictness, "STACK_DIR", tmp_path)
    assert check(["--stack", "qa"], io.StringIO()) == 2
    assert strictness.main(["--stack", "qa"]) == 2
    lines = capsys.readouterr().err.splitlines(keepends=True)
    assert len(lines) == 2, lines
    for line, prog in zip(lines, (PROG, "python -m policies.strictness"), strict=True):
        assert line.startswith(f"{prog}: error: Pulumi.qa.yaml {error}"), line
        assert line.endswith(fix), line


def test_empty_stack_name__exit_2(capsys: pytest.CaptureFixture[str], check: Check) -> None:
    assert check(["--stack", ""], io.StringIO()) == 2
    assert capsys.readouterr().err == (
        f"{PROG}: error: --stack needs a stack name, e.g. --stack dev (Pulumi.dev.yaml)\n"
    )


def test_urn_whose_stack_is_a_path__exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: Check
) -> None:
    record = {**PLAINTEXT_REDIS[0], "urn": "urn:pulumi:../../etc::p::t::kv"}
    assert check(["--resources", str(_write(tmp_path, [record]))], io.StringIO()) == 2
    assert "may hold only letters, digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stack_name", "envs", "config"),
    [
        ("dev", [], "production config"),
        ("prod-eu", ["ENVIRONMENT=production"], "production config"),
        ("prod", ["ENVIRONMENT=development"], "development config"),
        ("x", ["ENVIRONMENT=staging"], "staging config"),
    ],
    ids=["undeclared-dev-named", "prod-eu", "declared-development", "staging"],
)
def test_config__follows_the_declared_environment_not_the_stack_name(
    tmp_path: Path, stack_name: str, envs: list[str], config: str, check: Check
) -> None:
    records = [{**PLAINTEXT_REDIS[0], "props": {**PLAINTEXT_REDIS[0]["props"], "envs": envs}}]
    out = io.StringIO()
    check(["--resources", str(_write(tmp_path, records)), "--stack-name", stack_name], out)
    assert config in out.getvalue().splitlines()[0]


@pytest.mark.parametrize(
    ("declaration", "config"),
    [
        ("secure-redis:environment: production", "prod.json"),
        ("secure-redis:environment: development", "dev.json"),
        ("secure-redis:environment: staging", "staging.json"),
        ("secure-redis:other: 1", "prod.json"),
    ],
    ids=["production", "development", "staging", "undeclared-strictest"],
)
def test_strictness_cli__prints_the_declared_environments_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    declaration: str,
    config: str,
) -> None:
    (tmp_path / "Pulumi.eu-1.yaml").write_text(f"config:\n  {declaration}\n")
    monkeypatch.setattr(strictness, "STACK_DIR", tmp_path)
    assert strictness.main(["--stack", "eu-1"]) == 0
    assert capsys.readouterr().out == f"{strictness.CONFIG_DIR / config}\n"


def test_strictness_cli__unknown_stack_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert strictness.main(["--stack", "no-such-stack"]) == 2
    assert "Pulumi.no-such-stack.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"all": "disabled"}, "(all)"),
        # Pulumi's CLI takes `all` as an object too (pkg/resource/analyzer config.go applyConfig).
        ({"all": {"enforcementLevel": "advisory"}}, "(all)"),
        ({"redis-tls-only": "disabled", "network-redis-no-published-port": "advisory"},
         "(network-redis-no-published-port, redis-tls-only)"),
        ({"redis-tls-only": {"enforcementLevel": "disabled"}}, "(redis-tls-only)"),
    ],
)  # fmt: skip
def test_policy_config_that_lowers_mandatory_policies__is_said(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: dict[str, Any],
    named: str,
    check: Check,
) -> None:
    """A user's --config may switch mandatory policies off, as `pulumi --policy-pack-config`
    may; the environments' own configs never do, so the run says which it does not enforce."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    check(_args(_write(tmp_path, PLAINTEXT_REDIS), "--config", str(path)), io.StringIO())
    err = capsys.readouterr().err
    assert f"lowers mandatory policies {named}: this run does not enforce them" in err


@pytest.mark.parametrize(
    "config",
    [
        {"all": "disabled", "redis-tls-only": "mandatory"},
        {
            "all": {"enforcementLevel": "disabled"},
            "redis-tls-only": {"enforcementLevel": "mandatory"},
        },
    ],
    ids=["levels", "objects"],
)
def test_policy_config__a_policy_named_back_to_mandatory_is_not_said_lowered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict[str, Any], check: Check
) -> None:
    """A policy named at its own level wins over `all` (analyzer.resolve_config, as the CLI
    applies a config), so it is enforced and not among those said lowered."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = check(_args(_write(tmp_path, PLAINTEXT_REDIS), "--config", str(path)), io.StringIO())
    err = capsys.readouterr().err
    assert code == 1, "redis-tls-only is still enforced"
    assert "lowers mandatory policies (" in err
    assert "(all)" not in err
    assert "redis-tls-only" not in err.split("lowers mandatory policies", 1)[1]


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_the_environments_configs__lower_no_mandatory_policy(
    pack: PackServer, environment: str
) -> None:
    config = json.loads((REPO_ROOT / "policies" / "config" / f"{environment}.json").read_text())
    assert lowered_mandatory(pack.policies(), config) == []


def test_help__documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["--help"], io.StringIO())
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for status in ("0 no mandatory violation", "1 at least one", "2 unusable input"):
        assert status in text


@pytest.mark.parametrize(
    ("urns", "named"),
    [
        (["urn:pulumi:dev::shop::{t}::a", "urn:pulumi:prod::shop::{t}::b"], "dev, prod"),
        (["urn:pulumi:prod::shop::{t}::a", "urn:pulumi:prod::blog::{t}::b"], "blog, shop"),
        ([None, "urn:pulumi:prod::shop::{t}::b"], "prod, qa"),  # --stack-name qa for the first
    ],
)
def test_records_of_several_stacks_or_projects__exit_2_naming_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    urns: list[str | None],
    named: str,
    check: Check,
) -> None:
    """The pack judges one stack (its isolation rules compare a stack with itself, and it is
    configured for the first record's stack): a file of two stacks is split, not half judged
    (red before: judged as the first record's stack, exit 1)."""
    records: list[dict[str, Any]] = []
    for index, urn in enumerate(urns):
        record: dict[str, Any] = {"type": CONTAINER, "name": "ab"[index], "props": {}}
        if urn:
            record["urn"] = urn.format(t=CONTAINER)
        records.append(record)
    assert check(_args(_write(tmp_path, records)), io.StringIO()) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert named in err


@pytest.mark.parametrize(
    ("props", "named"),
    [
        ({"network_mode": "host"}, "network_mode (networkMode)"),
        ({"security_opts": ["seccomp=unconfined"], "pid_mode": "host"},
         "pid_mode (pidMode), security_opts (securityOpts)"),
        ({"networks_advanced": [{"name": "x"}]}, "networks_advanced (networksAdvanced)"),
    ],
)  # fmt: skip
def test_snake_case_property_names__exit_2_with_the_engines_names(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    props: dict[str, Any],
    named: str,
    check: Check,
) -> None:
    """The engine hands the pack camelCase names; a hand-written record in the SDK's
    snake_case would have every rule read nothing (red before: `network_mode: host` and
    `pid_mode: host` were not seen at all)."""
    records = [{"type": CONTAINER, "name": "a", "props": props}]
    assert check(_args(_write(tmp_path, records)), io.StringIO()) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert named in err


@pytest.mark.parametrize("violating", [False, True], ids=["clean-stack", "their-stack"])
def test_cli__a_reader_that_goes_away_keeps_the_verdict(tmp_path: Path, violating: bool) -> None:
    """`policies.check --stack dev | head -1` exited 1, a mandatory violation, on a clean
    stack: the exit status is the verdict, whoever reads the table."""
    if violating:
        source = REPO_ROOT / "tests/policy/external/adborja-tech-ecommerce-redis-memory-limit.json"
        records = tmp_path / "their-stack.json"
        records.write_text(json.dumps(json.loads(source.read_text())["records"]))
        argv = ["--resources", str(records), "--stack-name", "dev"]
    else:
        argv = ["--stack", "dev"]
    with subprocess.Popen(
        [sys.executable, "-m", "policies.check", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
    ) as process:  # fmt: skip
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # the reader leaves before the first line
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=300) == (1 if violating else 0), stderr
    assert "Traceback" not in stderr


def test_table_header__counts_the_rows_it_shows_and_the_policy_findings_they_hold(
    tmp_path: Path,
) -> None:
    """The header counts what the table shows; when unreadable properties merged policies'
    findings into one row each, it also says how many findings those rows hold, the number
    --json prints (red before: "45 mandatory" above 3 rows, per policy while the table
    merged)."""
    raw = foreign.raw()
    cache = next(item for item in raw if item["name"] == "cache")["props"]
    cache.update(command="redis-server /secrets/redis.conf", envs={"A": "b"})
    out = io.StringIO()
    assert run(_args(_write(tmp_path, raw), "--stack-name", "prod"), out) == 1
    header, *lines = out.getvalue().splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    shown = Counter(row.split()[0] for row in rows)
    assert f": {shown['mandatory']} mandatory, {shown['advisory']} advisory rows (" in header
    json_out = io.StringIO()
    assert run(_args(_write(tmp_path, raw), "--stack-name", "prod", "--json"), json_out) == 1
    levels = Counter(json.loads(line)["level"] for line in json_out.getvalue().splitlines())
    assert (
        f"({levels['mandatory']} mandatory, {levels['advisory']} advisory policy findings: "
        in header
    ), header
    assert levels["mandatory"] > shown["mandatory"]


def test_table_header__without_merged_rows__counts_rows_alone(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run(_args(_write(tmp_path, PLAINTEXT_REDIS)), out) == 1
    header, *lines = out.getvalue().splitlines()
    shown = Counter(line.split()[0] for line in lines[1:] if line.strip())
    assert header.endswith(f": {shown['mandatory']} mandatory, {shown['advisory']} advisory")


UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi_policy's preview sentinel


def test_table__a_value_unknown_at_preview_is_one_row_naming_the_resource(
    tmp_path: Path,
) -> None:
    """A first preview's unknown image: every policy that needs it is deferred, as under the
    engine, but the table says it once, naming the container that holds it (red before: one
    row per policy, and a stack policy's row named no resource: "(stack) ... string value at
    .image can't be known during preview")."""
    raw = foreign.raw()
    next(item for item in raw if item["name"] == "cache")["props"]["image"] = UNKNOWN_STRING
    out = io.StringIO()
    assert run(_args(_write(tmp_path, raw), "--stack-name", "prod"), out) == 0
    rows = [line for line in out.getvalue().splitlines() if ".image" in line or "image is" in line]
    assert len(rows) == 1, out.getvalue()
    assert rows[0].startswith("advisory  ")
    assert "Container cache: image is unknown during this preview" in rows[0]
    assert "image-container-pinned" in rows[0]
    assert "they run at `pulumi up`" in rows[0]
    json_out = io.StringIO()
    run(_args(_write(tmp_path, raw), "--stack-name", "prod", "--json"), json_out)
    deferred = [
        json.loads(line)
        for line in json_out.getvalue().splitlines()
        if "during preview" in json.loads(line)["message"]
    ]
    assert len(deferred) > 1  # one line per policy, as the engine reports them
