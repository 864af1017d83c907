"""infra.firewall's exit codes follow README's table ("Exit codes"): 2 bad input, nothing
done; 3 operational (the rules cannot be made); 5 refused (not root). It exited 1 for all
three bad-input and operational cases, a code the table gives to a miss or a violation."""

from __future__ import annotations

import pytest

from infra import firewall
from infra.firewall import FirewallError
from tests.support.entry_points import run_entry


@pytest.mark.parametrize("action", ["up", "show"])
@pytest.mark.parametrize("stack", ["a" * 20, "bad name", "a" * 5000])
def test_firewall__a_stack_name_its_chains_cannot_carry_is_bad_input(
    action: str, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_args: object) -> None:
        raise AssertionError("the engine was asked about a refused name")

    monkeypatch.setattr(firewall, "stack_bridges", never)
    code, text = run_entry(lambda: firewall.main([action, "--stack", stack]))
    assert code == 2, text
    assert text.startswith("firewall: error: stack "), text
    assert len(text.splitlines()) == 1, text


def test_firewall__down_of_such_a_name_is_nothing_to_remove(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """teardown.sh removes a stack whose name no chain can carry: it never had rules."""
    monkeypatch.setattr("infra.firewall.os.geteuid", lambda: 0)
    monkeypatch.setattr(firewall, "_runner", lambda: lambda _args: None)
    code, text = run_entry(lambda: firewall.main(["down", "--stack", "a" * 20]))
    assert code == 0, text


def test_firewall__rules_that_cannot_be_made_are_operational(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(_stack: str) -> firewall.Bridges:
        raise FirewallError("stack s41: a network is missing (404); deploy the stack first")

    monkeypatch.setattr(firewall, "stack_bridges", missing)
    code, text = run_entry(lambda: firewall.main(["show", "--stack", "s41"]))
    assert code == 3, text
    assert "deploy the stack first" in text, text


@pytest.mark.parametrize("action", ["up", "down"])
def test_firewall__not_root_is_refused(action: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.firewall.os.geteuid", lambda: 1000)
    code, text = run_entry(lambda: firewall.main([action, "--stack", "s41"]))
    assert code == 5, text
    assert "not root" in text, text


def test_readme__lists_infra_firewall_in_the_exit_code_table() -> None:
    from infra.settings import REPO_ROOT  # noqa: PLC0415

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Exit codes", 1)[1]
    table = section[section.index("| code |") :].split("\n\n", 1)[0]
    assert table.splitlines()[0].endswith("| `infra.firewall` |"), table.splitlines()[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert rows["2"].rstrip(" |").endswith("nothing done")
    assert rows["5"].endswith("| not root: nothing changed |")
