"""infra.firewall's rules and infra.engine_report's verdicts: pure logic, no iptables; and
the fixed bridge names the program declares for the rules to name."""

from __future__ import annotations

import pytest

from infra.engine_report import (
    LIVE_RESTORE_ON,
    LIVE_RESTORE_SWARM,
    engine_version,
    live_restore_line,
    report_lines,
    userns_remapped,
)
from infra.firewall import (
    Bridges,
    FirewallError,
    ahead_of_stack,
    bridge_name,
    chains,
    down,
    install_rules,
    output_chain,
    removal_rules,
)
from infra.naming import BRIDGE_NAME_OPTION, Role, bridge_interface, object_name
from infra.pulumi_names import NETWORK
from infra.render import RenderedStack

BRIDGES = Bridges(backend="br-back0000001", frontend="br-front000001")


def _rules() -> list[str]:
    return [" ".join(rule) for rule in install_rules("dev", BRIDGES)]


def test_firewall__host_bound_traffic_from_either_bridge_is_rejected_but_replies() -> None:
    rules = _rules()
    for bridge in (BRIDGES.backend, BRIDGES.frontend):
        assert (
            f"-I INPUT 1 -i {bridge} -m comment --comment secure-redis:dev "
            "-j SECURE-REDIS-dev-IN" in rules
        )
    chain = [r for r in rules if r.startswith("-A SECURE-REDIS-dev-IN")]
    assert chain == [
        "-A SECURE-REDIS-dev-IN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        "-A SECURE-REDIS-dev-IN -j REJECT",
    ]


def test_firewall__forwarded_traffic_stays_inside_each_bridge() -> None:
    rules = _rules()
    for bridge in (BRIDGES.backend, BRIDGES.frontend):
        for direction in ("-i", "-o"):
            assert (
                f"-I DOCKER-USER 1 {direction} {bridge} -m comment --comment secure-redis:dev "
                "-j SECURE-REDIS-dev-FWD" in rules
            )
    chain = [r for r in rules if r.startswith("-A SECURE-REDIS-dev-FWD")]
    # The stack's own containers are refused at once; anything else entering is dropped.
    assert chain[-3:] == [
        f"-A SECURE-REDIS-dev-FWD -i {BRIDGES.backend} -j REJECT",
        f"-A SECURE-REDIS-dev-FWD -i {BRIDGES.frontend} -j REJECT",
        "-A SECURE-REDIS-dev-FWD -j DROP",
    ]
    assert f"-A SECURE-REDIS-dev-FWD -i {BRIDGES.backend} -o {BRIDGES.backend} -j RETURN" in chain
    assert not [r for r in chain if "-i br-back" in r and "-o br-front" in r]


def test_firewall__only_root_opens_connections_from_the_host_into_the_backend() -> None:
    """Any host account reached Redis at its backend address and held its 512 connection
    slots with plain TCP (attack pass of 2026-12-03 on s43); the frontend stays open to the
    host (a Prometheus there scrapes the exporter)."""
    rules = _rules()
    assert [r for r in rules if r.startswith("-I OUTPUT")] == [
        f"-I OUTPUT 1 -o {BRIDGES.backend} -m comment --comment secure-redis:dev "
        "-j SECURE-REDIS-dev-OUT"
    ]
    assert [r for r in rules if r.startswith("-A SECURE-REDIS-dev-OUT")] == [
        "-A SECURE-REDIS-dev-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        "-A SECURE-REDIS-dev-OUT -m owner --uid-owner 0 -j RETURN",
        "-A SECURE-REDIS-dev-OUT -j REJECT",
    ]
    assert rules.index("-N SECURE-REDIS-dev-OUT") < rules.index(
        f"-I OUTPUT 1 -o {BRIDGES.backend} -m comment --comment secure-redis:dev "
        "-j SECURE-REDIS-dev-OUT"
    )


def test_firewall__the_longest_stack_name_fits_the_output_chain() -> None:
    assert len(output_chain("abcdefghijk")) <= 28  # iptables' limit on a chain's name


def test_firewall__removal_deletes_only_this_stacks_jumps_then_its_chains() -> None:
    listings = {
        "INPUT": "-P INPUT ACCEPT\n"
        '-A INPUT -i br-x -m comment --comment "secure-redis:dev" -j SECURE-REDIS-dev-IN\n'
        '-A INPUT -i br-y -m comment --comment "secure-redis:prod" -j SECURE-REDIS-prod-IN\n',
        "DOCKER-USER": "-N DOCKER-USER\n"
        "-A DOCKER-USER -o br-x -m comment --comment secure-redis:dev -j SECURE-REDIS-dev-FWD\n"
        "-A DOCKER-USER -j RETURN\n",
        "OUTPUT": "-P OUTPUT ACCEPT\n"
        '-A OUTPUT -o br-x -m comment --comment "secure-redis:dev" -j SECURE-REDIS-dev-OUT\n',
        "SECURE-REDIS-dev-IN": "-N SECURE-REDIS-dev-IN\n-A SECURE-REDIS-dev-IN -j DROP\n",
        "SECURE-REDIS-dev-FWD": "",
        "SECURE-REDIS-dev-OUT": "-N SECURE-REDIS-dev-OUT\n-A SECURE-REDIS-dev-OUT -j REJECT\n",
    }
    assert removal_rules("dev", listings) == [
        ["-D", "INPUT", "-i", "br-x", "-m", "comment", "--comment", "secure-redis:dev", "-j",
         "SECURE-REDIS-dev-IN"],
        ["-D", "DOCKER-USER", "-o", "br-x", "-m", "comment", "--comment", "secure-redis:dev",
         "-j", "SECURE-REDIS-dev-FWD"],
        ["-D", "OUTPUT", "-o", "br-x", "-m", "comment", "--comment", "secure-redis:dev", "-j",
         "SECURE-REDIS-dev-OUT"],
        ["-F", "SECURE-REDIS-dev-IN"],
        ["-X", "SECURE-REDIS-dev-IN"],
        ["-F", "SECURE-REDIS-dev-OUT"],
        ["-X", "SECURE-REDIS-dev-OUT"],
    ]  # fmt: skip


def _jump(chain: str, flag: str, bridge: str, stack: str = "dev") -> str:
    target = "SECURE-REDIS-dev-IN" if chain == "INPUT" else "SECURE-REDIS-dev-FWD"
    return f'-A {chain} {flag} {bridge} -m comment --comment "secure-redis:{stack}" -j {target}\n'


def test_firewall__rules_found_ahead_of_the_stacks_are_named_with_what_they_let_through() -> None:
    """`iptables -I DOCKER-USER 1 -i <frontend> -j ACCEPT` (attack pass of 2026-12-03 on s88)
    lets the app's egress past the stack's rules; `up` puts its rules first again and says
    what it found ahead of them, one line each. Rules that cannot match the stack's bridges,
    that drop or reject, or that come after its rules are not named."""
    listings = {
        "INPUT": "-P INPUT ACCEPT\n"
        "-A INPUT -i br-back0000001 -j ACCEPT\n"
        "-A INPUT -i lo -j ACCEPT\n"
        "-A INPUT -i br-front000001 -p tcp -m tcp --dport 22 -j REJECT\n"
        + _jump("INPUT", "-i", "br-back0000001")
        + "-A INPUT -s 10.0.0.0/8 -j ACCEPT\n"
        + _jump("INPUT", "-i", "br-front000001")
        + "-A INPUT -j ACCEPT\n",
        "DOCKER-USER": "-N DOCKER-USER\n"
        "-A DOCKER-USER -i br-+ -p tcp -m tcp --dport 443 -j ACCEPT\n"
        + _jump("DOCKER-USER", "-o", "br-x", stack="prod")
        + _jump("DOCKER-USER", "-o", "br-front000001")
        + _jump("DOCKER-USER", "-i", "br-front000001")
        + "-A DOCKER-USER -j RETURN\n",
    }
    assert ahead_of_stack("dev", BRIDGES, listings) == [
        "INPUT rule 1 `-i br-back0000001 -j ACCEPT`: lets through every packet in from "
        "br-back0000001 (the stack's backend bridge)",
        "INPUT rule 5 `-s 10.0.0.0/8 -j ACCEPT`: lets through every packet from 10.0.0.0/8",
        "DOCKER-USER rule 1 `-i br-+ -p tcp -m tcp --dport 443 -j ACCEPT`: lets through tcp to "
        "port 443 in from br-+ (the stack's backend and frontend bridges)",
    ]


def test_firewall__nothing_is_ahead_of_rules_not_installed_yet() -> None:
    listings = {"INPUT": "-P INPUT ACCEPT\n-A INPUT -j ACCEPT\n", "DOCKER-USER": "-N DOCKER-USER"}
    assert ahead_of_stack("dev", BRIDGES, listings) == []


def test_firewall__removal_with_nothing_installed_changes_nothing() -> None:
    assert (
        removal_rules("dev", {"INPUT": "-P INPUT ACCEPT\n", "DOCKER-USER": "-N DOCKER-USER"}) == []
    )


@pytest.mark.parametrize(
    ("network_id", "options", "name"),
    [("0123456789abcdef", {}, "br-0123456789ab"),
     ("0123456789abcdef", {"com.docker.network.bridge.name": "sr-dev"}, "sr-dev")],
    ids=["generated", "configured"],
)  # fmt: skip
def test_firewall__bridge_name(network_id: str, options: dict[str, str], name: str) -> None:
    assert bridge_name(network_id, options) == name


@pytest.mark.parametrize(
    "stack", ["a-very-long-stack", "dev;rm", ""], ids=["long", "shell", "empty"]
)
def test_firewall__refuses_a_stack_name_iptables_cannot_carry(stack: str) -> None:
    with pytest.raises(FirewallError, match="at most 11"):
        chains(stack)


def test_engine__version_and_userns() -> None:
    assert engine_version("20.10.24+dfsg1") == (20, 10)
    assert engine_version("weird") is None
    assert userns_remapped(["name=seccomp,profile=default", "name=userns"])
    assert not userns_remapped(["name=seccomp,profile=default"])


def test_engine__20_10_without_userns_gets_both_warnings() -> None:
    lines = report_lines(
        {"ServerVersion": "20.10.24+dfsg1", "SecurityOptions": [], "LiveRestoreEnabled": True}
    )
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert len(warnings) == 2
    assert "moby/moby#45610" in warnings[1]
    assert "userns-remap" in warnings[0]


def test_engine__28_with_userns_and_live_restore_has_no_warning() -> None:
    lines = report_lines(
        {"ServerVersion": "28.0.1", "SecurityOptions": ["name=userns"], "LiveRestoreEnabled": True}
    )
    assert not [line for line in lines if line.startswith("WARNING")]
    assert LIVE_RESTORE_ON in lines


@pytest.mark.parametrize("info", [{"LiveRestoreEnabled": False}, {}], ids=["off", "absent"])
def test_engine__without_live_restore_warns_and_says_how_to_enable_it(
    info: dict[str, object],
) -> None:
    """CIS Docker 2.14: without live-restore an engine restart stops every container, and the
    stack's on-failure services stay stopped until an up (docs/day2.md)."""
    line = live_restore_line(info)
    assert line.startswith("WARNING live-restore: off")
    assert '"live-restore": true' in line
    assert "/etc/docker/daemon.json" in line
    assert line in report_lines({"ServerVersion": "28.0.1", **info})


@pytest.mark.parametrize("state", ["active", "pending", "locked"])
def test_engine__a_swarm_member_without_live_restore_is_not_told_to_enable_it(state: str) -> None:
    """live-restore is incompatible with swarm mode: dockerd refuses to start with both, so
    the daemon.json advice would leave the engine down at its next start."""
    line = live_restore_line({"LiveRestoreEnabled": False, "Swarm": {"LocalNodeState": state}})
    assert line == LIVE_RESTORE_SWARM
    assert "daemon.json" not in line
    assert "incompatible with swarm mode" in line


def test_engine__an_engine_outside_a_swarm_still_gets_the_advice() -> None:
    line = live_restore_line({"LiveRestoreEnabled": False, "Swarm": {"LocalNodeState": "inactive"}})
    assert '"live-restore": true' in line


def test_firewall__down_for_a_name_no_chain_can_carry_changes_nothing() -> None:
    def never(args: object) -> object:
        raise AssertionError(f"iptables called with {args}")

    assert down("e2e-absent-0123abcd", never) == 0  # type: ignore[arg-type]


# -- the bridges the rules name are fixed in the program ---------------------------------------


@pytest.mark.parametrize(
    ("stack", "backend", "frontend"),
    [("dev", "sr-dev-b", "sr-dev-f"), ("ap12345678", "sr-ap12345678-b", "sr-ap12345678-f")],
)
def test_bridge_interface__readable_while_it_fits(stack: str, backend: str, frontend: str) -> None:
    assert bridge_interface(stack, Role.BACKEND) == backend
    assert bridge_interface(stack, Role.FRONTEND) == frontend


def test_bridge_interface__a_long_stack_name_is_hashed_within_15_characters() -> None:
    long_names = ["staging-eu-west", "staging-eu-east", "a" * 31]
    names = {bridge_interface(s, r) for s in long_names for r in (Role.BACKEND, Role.FRONTEND)}
    assert len(names) == 6, "distinct per stack and network"
    assert all(len(n) <= 15 and n.startswith("sr_") for n in names)


def test_bridge_interface__only_networks_have_one() -> None:
    with pytest.raises(ValueError, match="only the stack's networks"):
        bridge_interface("dev", Role.REDIS)


def test_program__declares_each_networks_bridge_name(stack: RenderedStack) -> None:
    """Both paths create the networks from this declaration, so both get the fixed names the
    firewall's rules name (a replaced network comes back with the same interface)."""
    networks = {r.props["name"]: r.props for r in stack.resources if r.type == NETWORK}
    for role in (Role.BACKEND, Role.FRONTEND):
        props = networks[object_name(stack.stack, role)]
        assert props["options"][BRIDGE_NAME_OPTION] == bridge_interface(stack.stack, role)
