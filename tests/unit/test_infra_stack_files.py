"""Stack files are read the way Pulumi reads them, and bad ones are one-line errors.

Pulumi reads an un-namespaced key in `Pulumi.<stack>.yaml` as the project's own
(`tlsMinVersion:` is `secure-redis:tlsMinVersion`); `infra.apply` and `policies.check` read
the file themselves, so they must agree with it or they would deploy settings `pulumi up`
would not.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from infra import apply, preview
from infra.settings import (
    REPO_ROOT,
    STACK_NAME_PATTERN,
    SettingsError,
    load_settings,
    load_stack_file,
    valid_stack_name,
)
from policies import check, strictness


def _file(tmp_path: Path, text: str | bytes, stack: str = "qa") -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return tmp_path


def test_unnamespaced_key__is_the_projects_as_pulumi_reads_it(tmp_path: Path) -> None:
    root = _file(
        tmp_path, "config:\n  secure-redis:environment: development\n  tlsMinVersion: '1.3'\n"
    )
    settings = load_settings("qa", load_stack_file("qa", root))
    assert settings.tls_min_version == "1.3"


def test_unnamespaced_unknown_key__is_an_error(tmp_path: Path) -> None:
    root = _file(
        tmp_path, "config:\n  secure-redis:environment: development\n  tlsMinVersio: '1.3'\n"
    )
    with pytest.raises(SettingsError, match="secure-redis:tlsMinVersio is not a setting"):
        load_settings("qa", load_stack_file("qa", root))


def test_wrong_namespace__is_an_error(tmp_path: Path) -> None:
    root = _file(
        tmp_path,
        "config:\n  secure-redis:environment: development\n  secure-redis2:tlsMinVersion: '1.3'\n",
    )
    with pytest.raises(
        SettingsError, match="'secure-redis2:tlsMinVersion' is not in the secure-redis: namespace"
    ):
        load_settings("qa", load_stack_file("qa", root))


def test_docker_namespace__is_the_providers_and_allowed(tmp_path: Path) -> None:
    root = _file(
        tmp_path,
        "config:\n  secure-redis:environment: development\n  docker:host: unix:///var/run/docker.sock\n",
    )
    assert load_settings("qa", load_stack_file("qa", root)).docker_host


@pytest.mark.parametrize(
    "text",
    [
        "config:\n  secure-redis:environment: development\n"
        "  secure-redis:environment: production\n",
        "config:\n  secure-redis:environment: development\n  environment: production\n",
    ],
    ids=["same-key-twice", "with-and-without-namespace"],
)
def test_duplicate_key__is_an_error_not_the_last_value(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError, match="environment is set twice"):
        load_stack_file("qa", _file(tmp_path, text))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"config:\n  secure-redis:environment: [development\n", "line 3"),
        (b"config:\n  secure-redis:environment: d\xe9veloppement\n", "is not UTF-8 text"),
        (b"config: 5\n", "`config:` must be a mapping"),
        (b"- a\n- b\n", "`config:` must be a mapping"),
    ],
    ids=["malformed", "not-utf8", "config-scalar", "list"],
)
def test_bad_file__is_a_settings_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        load_stack_file("qa", _file(tmp_path, content))
    assert "Pulumi.qa.yaml" in str(caught.value)


def test_docker_host_with_credentials__is_never_echoed() -> None:
    config = {
        "secure-redis:environment": "development",
        # checkov:skip=CKV_SECRET_4: a made-up credential, the thing the test keeps out of output
        "docker:host": "http://admin:hunter2@docker.example:2375",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings("dev", config)
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)
    assert "docker:host is a http:// URL" in str(caught.value)


def test_staging__requires_tls_1_3_like_its_client() -> None:
    """The app requires TLS 1.3 in staging (Settings.min_tls_version); so does the server."""
    with pytest.raises(SettingsError, match=re.escape("staging accepts TLSv1.3 only")):
        load_settings(
            "qa", {"secure-redis:environment": "staging", "secure-redis:tlsMinVersion": "1.2"}
        )


@pytest.mark.parametrize("environment", ["Production", "DEVELOPMENT"])
def test_environment__is_case_sensitive_like_the_app(environment: str) -> None:
    with pytest.raises(SettingsError, match="an unknown environment"):
        load_settings("qa", {"secure-redis:environment": environment})


def test_bad_stack_name__states_the_rule_and_lists_only_usable_stacks(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.Dev.yaml").write_text("config: {}\n")
    with pytest.raises(SettingsError) as caught:
        load_stack_file("Dev", tmp_path)
    assert "1-31 lowercase letters" in str(caught.value)
    assert "use one of: dev " in str(caught.value), "Dev is not a usable stack name"


@pytest.mark.parametrize(
    "name", ["dev", "prod", "qa-1", "a" * 31, "Dev", "-dev", "dev_1", "dev.1", "a" * 32, ""]
)
def test_stack_name_rule__scripts_and_infra_agree(name: str) -> None:
    """scripts/lib.sh's valid_stack_name and infra.settings apply the same pattern."""
    lib = REPO_ROOT / "scripts" / "lib.sh"
    shell = subprocess.run(
        ["bash", "-c", f'source "{lib}"; valid_stack_name "$1"', "-", name],
        capture_output=True,
        check=False,
    )
    assert (shell.returncode == 0) == valid_stack_name(name)


def test_stack_name_pattern__is_written_once_per_language() -> None:
    lib = (REPO_ROOT / "scripts" / "lib.sh").read_text()
    assert f"STACK_NAME_PATTERN='{STACK_NAME_PATTERN}'" in lib


# YAML aliases make a list of 10**9 elements out of a few lines: str() of it never returns.
_ALIAS_BOMB = (
    b"a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + b"".join(
        b"%c: &%c [%s]\n" % (n, n, b",".join([b"*" + bytes([n - 1])] * 10))
        for n in range(ord("b"), ord("j"))
    )
    + b"config:\n  secure-redis:environment: development\n  secure-redis:appHostPort: *i\n"
)


@pytest.mark.parametrize(
    "content",
    [
        b"config:\n  secure-redis:environment: d\xe9v\n",
        b"config: [unclosed\n",
        b"config: {a: 1, a: 2}\n",
    ],
    ids=["not-utf8", "malformed", "duplicate"],
)  # fmt: skip
def test_every_tool__a_bad_stack_file_is_exit_2_without_a_traceback(
    content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = f"fz{uuid.uuid4().hex[:12]}"
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    path.write_bytes(content)
    try:
        codes = [
            preview.main(["--stack", stack], out=io.StringIO()),
            apply.main(["plan", "--stack", stack]),
            check.run(["--stack", stack], out=io.StringIO()),
        ]
    finally:
        path.unlink()
    err = capsys.readouterr().err
    assert codes == [2, 2, 2]
    assert "Traceback" not in err
    assert max(len(line) for line in err.splitlines()) < 1000  # no value echoed whole
    assert err.count(f"Pulumi.{stack}.yaml") >= 3
    # One problem, one line (docs/stack-settings.md): no header with a list of one under it.
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 3, err
    assert not [line for line in err.splitlines() if line.startswith("  - ")], err


@pytest.mark.parametrize(
    "content",
    [
        b"config:\n  ? [a, b]\n  : x\n",
        b"config:\n  secure-redis:appHostPort: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        _ALIAS_BOMB,
        b"config:\n  secure-redis:environment: " + b"d" * (1 << 20) + b"\n",
        b"config:\n  secure-redis:environment: " + b"d" * 5000 + b"\n",
    ],
    ids=["list-as-a-key", "nested-5000-deep", "alias-bomb", "over-1-mib", "5000-char-value"],
)
def test_hostile_stack_file__one_short_error_from_the_loader_and_strictness(
    tmp_path: Path,
    content: bytes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What preview, apply and check read first (load_stack_file, then load_settings) and what
    scripts/pulumi-deploy.sh asks (policies.strictness), on a file in a tmp directory: a file
    in the repository would be seen by the tests that list the stacks there are."""
    root = _file(tmp_path, content)
    with pytest.raises(SettingsError) as caught:
        load_settings("qa", load_stack_file("qa", root))
    assert max(len(line) for line in str(caught.value).splitlines()) < 1000
    monkeypatch.setattr(strictness, "STACK_DIR", root)
    code = strictness.main(["--stack", "qa"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2)  # 0: it reads only the environment, and production is the floor
    assert all(len(line) < 1000 for line in err.splitlines())


@pytest.mark.parametrize(("depth", "too_deep"), [(64, False), (65, True)])
def test_flow_nesting__refused_past_64_levels_before_the_parser_works_through_them(
    tmp_path: Path, depth: int, too_deep: bool
) -> None:
    """infra/settings.py stops at the 65th `[` (PyYAML's scanner is quadratic in the flow
    depth: 5000 levels took it 9 s of CPU before the composer's RecursionError); 64 levels
    still read, and the setting's own check reports the value."""
    content = "config:\n  secure-redis:appHostPort: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(SettingsError) as caught:
        load_settings("qa", load_stack_file("qa", _file(tmp_path, content)))
    assert ("nests lists or mappings too deeply" in str(caught.value)) is too_deep, caught.value


@pytest.mark.parametrize("stack", ["a\nb", "x\x1b[31mRED"], ids=["newline", "ansi-escape"])
def test_stack_name_with_control_characters__never_reaches_the_terminal_raw(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = [
        preview.main(["--stack", stack], out=io.StringIO()),
        apply.main(["plan", "--stack", stack]),
        strictness.main(["--stack", stack]),
    ]
    err = capsys.readouterr().err
    assert codes == [2, 2, 2]
    assert "\x1b" not in err
    assert "Pulumi.a\nb" not in err


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_stack_file_that_is_not_a_regular_file__is_named_so_and_never_read(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "Pulumi.qa.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: reading it would block forever
    elif kind == "device":
        path.symlink_to("/dev/zero")  # endless
    else:
        path.mkdir()
    with pytest.raises(SettingsError, match=re.escape("is not a regular file")):
        load_stack_file("qa", tmp_path)


def test_long_value__is_shown_shortened_in_its_error() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("qa", {"secure-redis:environment": "d" * 5000})
    message = str(caught.value)
    assert "'dddd" in message
    assert "d" * 100 not in message


@pytest.mark.parametrize(
    ("stack", "line"),
    [
        ("Dev", "error: 'Dev' is not a stack name: 1-31 lowercase letters, digits or '-', "
                "starting with a letter or digit (it is part of every Docker object name); "
                "use one of: "),
        ("../x", "error: '../x' is not a stack name: 1-31 lowercase letters"),
        ("qa", "error: Pulumi.qa.yaml does not exist in "),
    ],
    ids=["capital", "a-path", "no-stack-file"],
)  # fmt: skip
def test_strictness_cli__a_bad_stack_is_one_line_naming_it_once(
    capsys: pytest.CaptureFixture[str], stack: str, line: str
) -> None:
    """What scripts/pulumi-deploy.sh relays: the file name once, the rule for a bad name."""
    assert strictness.main(["--stack", stack]) == 2
    (printed,) = capsys.readouterr().err.splitlines()
    assert printed.startswith(f"python -m policies.strictness: {line}")
    if line.endswith("use one of: "):
        # dev and prod, and any other stack file of this checkout (a user's third stack).
        listed = printed.split(line, 1)[1].split(" (")[0]
        assert {"dev", "prod"} <= set(listed.split(", ")), printed
    assert printed.count(f"Pulumi.{stack}.yaml") <= 1
    assert "in x.yaml" not in printed


@pytest.mark.parametrize(
    "text",
    [
        "secure-redis:environment: staging\nsecure-redis:appHostPort: 18100\n",
        "environment: staging\nencryptionsalt: v1:abc\n",
    ],
    ids=["namespaced", "bare"],
)
def test_settings_outside_config__are_named_not_reported_as_missing(
    tmp_path: Path, text: str
) -> None:
    """A stack file without its `config:` line said `secure-redis:environment is missing`
    although the file sets it: the fix is the missing line, not the value."""
    with pytest.raises(SettingsError) as caught:
        load_stack_file("qa", _file(tmp_path, text))
    message = str(caught.value)
    assert message.startswith("Pulumi.qa.yaml: ")
    assert "environment" in message
    assert "at the top level: settings go under `config:`" in message
    assert "encryptionsalt" not in message, "Pulumi's own top-level keys belong there"


def test_pulumi_top_level_keys__beside_config_are_fine(tmp_path: Path) -> None:
    text = "encryptionsalt: v1:abc\nconfig:\n  secure-redis:environment: development\n"
    assert load_stack_file("qa", _file(tmp_path, text)) == {
        "secure-redis:environment": "development"
    }


def test_missing_stack_file__says_what_a_new_one_holds(tmp_path: Path) -> None:
    """The hint was `pulumi stack init <name>`, which a user of the local applier does not
    have and which writes no setting."""
    _file(tmp_path, "config:\n  secure-redis:environment: development\n", stack="dev")
    with pytest.raises(SettingsError) as caught:
        load_stack_file("u9", tmp_path)
    message = str(caught.value)
    assert "Pulumi.u9.yaml does not exist" in message
    assert "use one of: dev" in message
    assert "pulumi stack init" not in message
    for key in ("environment", "appHostPort", "runtimeIdSlot"):
        assert f"secure-redis:{key}" in message
    assert 'docs/stack-settings.md, "Another stack"' in message


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"# secure-redis:environment: development\n# config:\n", b"---\n"],
    ids=["empty", "blank-lines", "only-comments", "empty-document"],
)
def test_empty_stack_file__says_it_is_empty_and_what_it_should_hold(
    tmp_path: Path, content: bytes
) -> None:
    """YAML reads such a file as no document at all; the message was "`config:` must be a
    mapping", about a mapping the user never wrote."""
    with pytest.raises(SettingsError) as caught:
        load_stack_file("qa", _file(tmp_path, content))
    message = str(caught.value)
    assert "Pulumi.qa.yaml is empty (or holds only comments)" in message
    assert "must be a mapping" not in message
    for key in ("environment", "appHostPort", "runtimeIdSlot"):
        assert f"secure-redis:{key}" in message
    assert 'docs/stack-settings.md, "Another stack"' in message


def test_policy_check__a_file_level_problem_is_separated_from_the_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strictness, "STACK_DIR", _file(tmp_path, "config: 5\n"))
    with pytest.raises(strictness.StrictnessError) as caught:
        strictness.of_stack("qa")
    assert str(caught.value) == "Pulumi.qa.yaml: `config:` must be a mapping of key: value"
