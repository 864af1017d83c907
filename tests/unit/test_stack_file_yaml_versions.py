"""A stack file's values mean to infra.apply, infra.preview and policies.check what they mean to
`pulumi up`.

Pulumi hands the program each plain value of `Pulumi.<stack>.yaml` as the text written;
PyYAML read it as YAML 1.1, where `5:02:25` is 18145, `017` is 15 and
`yes` is True (an input-fuzzing pass found it). infra/settings.py now reads every plain value as
its text and refuses, on one line naming the file, line, key and fix, a text YAML readers take
differently. Merge keys (`<<: *base`), which Pulumi reads, were refused with PyYAML's "could not
determine a constructor for the tag ...merge".
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from infra import apply
from infra.settings import SettingsError, load_settings, load_stack_file
from infra.stack_config import set_value
from tests.support.fuzzing import drawn

BOUNDED = drawn(40)
BASE = "config:\n  secure-redis:environment: development\n"


def _file(root: Path, text: str) -> Path:
    (root / "Pulumi.qa.yaml").write_text(text)
    return root


def _read(root: Path, value: str) -> object:
    config = load_stack_file("qa", _file(root, f"{BASE}  secure-redis:appHostPort: {value}\n"))
    return config["secure-redis:appHostPort"]


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("5:02:25", 'write 18145, or quote it: secure-redis:appHostPort: "5:02:25"'),
        ("0o17", "write 15, or quote it"),
        ("017", "write 15 or 17, or quote it"),
        ("0x46E1", "write 18145, or quote it"),
        ("18_145", "write 18145, or quote it"),
        ("+18145", "write 18145, or quote it"),
        ("1.8145e4", "write 18145, or quote it"),
        ("18145.50", "write 18145.5, or quote it"),
        ("yes", 'quote it: secure-redis:appHostPort: "yes"'),
        ("off", "quote it"),
        ("True", "quote it"),
        (".inf", "quote it"),
        ("2026-12-03", "quote it"),
        ("~", "write its value, or remove the line"),
        ("", "write its value, or remove the line"),
    ],
)
def test_a_value_yaml_readers_take_differently__is_refused_naming_file_line_key_and_fix(
    tmp_path: Path, value: str, fix: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _read(tmp_path, value)
    message = str(caught.value)
    assert message.startswith("Pulumi.qa.yaml, line 3: secure-redis:appHostPort"), message
    assert fix in message, message
    assert "\n" not in message


def test_a_refused_value__is_exit_2_from_the_applier(tmp_path: Path) -> None:
    _file(tmp_path, f"{BASE}  appHostPort: 5:02:25\n")
    err = io.StringIO()
    with redirect_stderr(err):
        code = apply.main(["plan", "--stack", "qa", "--project-dir", str(tmp_path)])
    assert code == 2
    assert "Pulumi.qa.yaml, line 3: appHostPort: 5:02:25 is" in err.getvalue()
    assert "write 18145" in err.getvalue()


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("18145", "18145"),
        ('"5:02:25"', "5:02:25"),
        ("'017'", "017"),
        ("!!str yes", "yes"),
        ("0.5", "0.5"),
        ("-0", "-0"),
        ("y:z", "y:z"),
    ],
)
def test_a_plain_or_quoted_value__is_its_text_as_pulumi_hands_it(
    tmp_path: Path, written: str, read: str
) -> None:
    assert _read(tmp_path, written) == read


def test_a_plain_number__still_sets_the_setting(tmp_path: Path) -> None:
    root = _file(tmp_path, f"{BASE}  appHostPort: 18145\n  redisCpus: 0.5\n")
    settings_ = load_settings("qa", load_stack_file("qa", root))
    assert (settings_.app_host_port, settings_.redis_cpus) == (18145, 0.5)


def test_merge_key__is_read_as_pulumi_reads_it_the_entries_written_win(tmp_path: Path) -> None:
    text = (
        "config:\n"
        "  <<: &base\n"
        "    secure-redis:environment: development\n"
        "    secure-redis:appHostPort: 18080\n"
        "  secure-redis:appHostPort: 18145\n"
    )
    assert load_stack_file("qa", _file(tmp_path, text)) == {
        "secure-redis:environment": "development",
        "secure-redis:appHostPort": "18145",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n  <<: {a: b}\n  <<: {c: d}\n", "<< is set twice"),
        ("config:\n  <<: {a: b, a: c}\n", "a is set twice"),
        ("config:\n  <<: {a: 0o17}\n", "line 2: a: 0o17 is"),
        ("config:\n  a: !!int 5\n", "the tag !!int"),
    ],
    ids=["two-merge-keys", "merged-key-twice", "merged-value-checked", "explicit-tag"],
)
def test_merge_and_tags__refused_where_readers_differ(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_stack_file("qa", _file(tmp_path, text))


def test_an_anchor_that_merges_itself__is_named_as_such(tmp_path: Path) -> None:
    # PyYAML's construction recurses without end on it; "nests too deeply" alone misled.
    text = "config:\n  <<: &a {secure-redis:environment: development, <<: *a}\n"
    with pytest.raises(SettingsError, match="an anchor that includes or merges itself"):
        load_stack_file("qa", _file(tmp_path, text))


def test_keys__are_read_as_written_so_1_and_true_are_two_keys(tmp_path: Path) -> None:
    config = load_stack_file("qa", _file(tmp_path, 'config:\n  "1": a\n  "true": b\n'))
    assert set(config) == {"secure-redis:1", "secure-redis:true"}


@pytest.mark.parametrize("value", ["0o17", "1_000", "yes", "5:02:25", "1.50", "null"])
def test_stack_config_set__quotes_a_value_readers_take_differently(
    tmp_path: Path, value: str
) -> None:
    text = set_value(BASE, "keyPrefix", value)
    assert load_stack_file("qa", _file(tmp_path, text))["secure-redis:keyPrefix"] == value


# Plain scalars: no space, no indicator first, no `:` last (that would make a key).
_FIRST = "0123456789abefnoxyYNOT.+~_"
_REST = _FIRST + "-:eE"
plain_scalars = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_FIRST),
    st.text(alphabet=_REST, max_size=10),
).filter(lambda t: not t.endswith(":"))
# The YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2), written out again here so that the
# test does not check infra/settings.py against itself.
_CORE_NUMBER = re.compile(
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


@BOUNDED
@given(text=plain_scalars)
def test_any_plain_value__is_refused_or_means_its_text_to_yaml_1_1_and_1_2(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    root = tmp_path_factory.mktemp("yaml")
    try:
        value = _read(root, text)
    except SettingsError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert refused.startswith("Pulumi.qa.yaml, line 3: "), refused
        return
    # Accepted: the value is the text Pulumi hands the program ...
    assert value == text
    # ... and YAML 1.1 (PyYAML's own loader) prints back the same ...
    assert str(yaml.safe_load(f"v: {text}")["v"]) == text
    # ... and a YAML 1.2 number is one every reader writes the same way.
    if _CORE_NUMBER.fullmatch(text):
        assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", text), text
