"""Host firewall rules for a deployed stack: what Docker 20.10 leaves open, closed by us.

    python -m infra.firewall up   --stack S   install (or refresh) the rules of stack S
    python -m infra.firewall down --stack S   remove them
    python -m infra.firewall show --stack S   print the rules `up` would install

Docker filters traffic *between* networks, not traffic to the host itself, and it matches
no input interface on the DNAT of a loopback-published port. On a deployed stack that left:

* the host reachable from the "internal" backend: a container there reaches any host
  service through the bridge's gateway address (traffic to the host is INPUT, which Docker
  never filters);
* unrestricted egress for the app through the frontend network (Redis is on the backend;
  the app needs nothing else);
* the app's 127.0.0.1-published port reachable from an L2 neighbour that sends packets for
  127.0.0.1 to this host (moby/moby#45610; fixed in Docker Engine 28.0);
* Redis reachable from every account of the host: the host has an address on the "internal"
  backend too, and connections the host opens itself are OUTPUT, which Docker never filters.
  Redis counts a connection against `maxclients` before its TLS handshake, so an account
  without Docker access held 600 plain TCP connections and Redis refused every new client,
  its health check too (attack pass of 2026-12-03 on s43, docs/attack-surface.md).

`up` puts two chains per stack in the iptables filter table that Docker itself programs (on
Debian 12 `iptables` is the nf_tables backend, as dockerd's own rules are):

    SECURE-REDIS-<S>-IN   jumped to from INPUT for packets from the stack's bridges:
                          replies to connections the host opened (docker-proxy serving the
                          published port) return; everything else is rejected.
    SECURE-REDIS-<S>-FWD  jumped to from DOCKER-USER (Docker evaluates it before its own
                          FORWARD rules) for packets into or out of the stack's bridges:
                          traffic within one bridge (app <-> Redis) and replies return;
                          every new connection leaving the bridges is rejected, every one
                          entering them from elsewhere dropped.
    SECURE-REDIS-<S>-OUT  jumped to from OUTPUT for packets the host sends into the backend
                          bridge: replies and root's connections return (root runs docker
                          anyway; the e2e checks connect as root); every other account's new
                          connection is rejected. The frontend bridge is left open to the host:
                          a Prometheus there scrapes the exporter at its frontend address
                          (docs/monitoring.md, "Scrape config"), and the app's port is the
                          token's business.

Rejected, not dropped, when the stack's own containers are the sender: they learn at once
that the way is shut instead of waiting for a timeout (Docker's embedded DNS forwards a name
it does not know, such as `redis` while Redis is stopped, to the host's resolvers from the
container's network namespace; a dropped query would stall the app's fallback to memory for
the resolver's whole timeout). Strangers get nothing back.

The rules name the bridges' host interfaces. The program fixes those names (`sr-<S>-b`,
`sr-<S>-f`; infra/naming.py bridge_interface), so the rules stay right when an `up` (either
path) replaces a network: the new bridge gets the same name. A stack deployed before the names
were fixed has `br-<network id>` bridges; run `up` here again after its next deploy.

Every jump carries the comment `secure-redis:<S>`, so `down` finds exactly this stack's.
`up` prints, one line each, the rules it found ahead of the stack's jumps that let the
stack's traffic through (ahead_of_stack); it leaves them, behind the stack's jumps again.
Changing the host firewall needs root; without it `up` says so and changes nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from infra.cli import OneLineParser, exit_with, say
from infra.naming import BRIDGE_NAME_OPTION, Role, object_name
from infra.settings import quoted

IPTABLES: Final = "iptables"
_STACK_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$")

Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class FirewallError(RuntimeError):
    """The rules could not be installed or removed; the message says what to do."""


@dataclass(frozen=True)
class Bridges:
    """Host interface names of the stack's two networks."""

    backend: str
    frontend: str


def comment(stack: str) -> str:
    return f"secure-redis:{stack}"


def chains(stack: str) -> tuple[str, str]:
    """(input chain, forward chain) of `stack`; iptables allows 28 characters."""
    if not _STACK_RE.match(stack):
        raise FirewallError(
            f"stack {quoted(stack)}: the firewall chains need a name of at most 11 letters, "
            "digits, '-' or '_'"
        )
    return f"SECURE-REDIS-{stack}-IN", f"SECURE-REDIS-{stack}-FWD"


def output_chain(stack: str) -> str:
    """The chain for what the host sends into the stack's backend bridge (28 characters at
    most, as chains() checks)."""
    chains(stack)
    return f"SECURE-REDIS-{stack}-OUT"


def install_rules(stack: str, bridges: Bridges) -> list[list[str]]:
    """iptables argument lists that create the chains and jump to them (after `down`)."""
    in_chain, fwd_chain = chains(stack)
    out_chain = output_chain(stack)
    tag = ["-m", "comment", "--comment", comment(stack)]
    replies = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"]
    back, front = bridges.backend, bridges.frontend
    rules = [
        ["-N", in_chain],
        ["-A", in_chain, *replies, "-j", "RETURN"],
        ["-A", in_chain, "-j", "REJECT"],
        ["-N", fwd_chain],
        ["-A", fwd_chain, "-i", back, "-o", back, "-j", "RETURN"],
        ["-A", fwd_chain, "-i", front, "-o", front, "-j", "RETURN"],
        ["-A", fwd_chain, *replies, "-j", "RETURN"],
        ["-A", fwd_chain, "-i", back, "-j", "REJECT"],
        ["-A", fwd_chain, "-i", front, "-j", "REJECT"],
        ["-A", fwd_chain, "-j", "DROP"],
        ["-N", out_chain],
        ["-A", out_chain, *replies, "-j", "RETURN"],
        ["-A", out_chain, "-m", "owner", "--uid-owner", "0", "-j", "RETURN"],
        ["-A", out_chain, "-j", "REJECT"],
        ["-I", "OUTPUT", "1", "-o", back, *tag, "-j", out_chain],
    ]
    for bridge in (back, front):
        rules.append(["-I", "INPUT", "1", "-i", bridge, *tag, "-j", in_chain])
        rules.append(["-I", "DOCKER-USER", "1", "-i", bridge, *tag, "-j", fwd_chain])
        rules.append(["-I", "DOCKER-USER", "1", "-o", bridge, *tag, "-j", fwd_chain])
    return rules


def removal_rules(stack: str, listings: dict[str, str]) -> list[list[str]]:
    """iptables argument lists that delete this stack's jumps (found by their comment in
    `iptables -S <chain>` output) and then its chains, if present."""
    in_chain, fwd_chain = chains(stack)
    marker = f'--comment "{comment(stack)}"'
    marker_bare = f"--comment {comment(stack)}"
    rules: list[list[str]] = []
    for chain in _JUMPED_FROM:
        for line in listings.get(chain, "").splitlines():
            if line.startswith(f"-A {chain} ") and (marker in line or marker_bare in line):
                words = line.replace(marker, marker_bare).split()
                rules.append(["-D", *words[1:]])
    for chain in (in_chain, fwd_chain, output_chain(stack)):
        if f"-N {chain}" in listings.get(chain, ""):
            rules += [["-F", chain], ["-X", chain]]
    return rules


# The built-in chains that jump to the stack's own.
_JUMPED_FROM: Final = ("INPUT", "DOCKER-USER", "OUTPUT")

# Targets that let nothing through: a rule ending in one of them, ahead of the stack's, is
# no way around them.
_STOPS: Final = frozenset({"DROP", "REJECT"})


def _is_ours(line: str, stack: str) -> bool:
    return f'--comment "{comment(stack)}"' in line or f"--comment {comment(stack)} " in line


def _interface_matches(pattern: str, interface: str) -> bool:
    """iptables' -i/-o: a trailing `+` matches any name with that prefix."""
    if pattern.endswith("+"):
        return interface.startswith(pattern[:-1])
    return pattern == interface


def ahead_of_stack(stack: str, bridges: Bridges, listings: dict[str, str]) -> list[str]:
    """The rules in INPUT, DOCKER-USER and OUTPUT that come before the stack's own jumps (its
    last one in each chain), could match its bridges' traffic and let it through rather than drop or
    reject it (attack pass of 2026-12-03 on s88: `iptables -I DOCKER-USER 1 -i sr-s88-f -j
    ACCEPT` gave the app egress past the stack's rules). One line each: the chain, its number
    as `iptables -L <chain> --line-numbers` counts, the rule and what it lets through."""
    named = {bridges.backend: "backend", bridges.frontend: "frontend"}
    found: list[str] = []
    for chain in _JUMPED_FROM:
        rules = [
            line for line in listings.get(chain, "").splitlines() if line.startswith(f"-A {chain} ")
        ]
        ours = [i for i, line in enumerate(rules) if _is_ours(line, stack)]
        if not ours:
            continue  # not installed: `up` puts them first, nothing is ahead of them
        for number, line in enumerate(rules[: ours[-1]], start=1):
            if number - 1 in ours:
                continue
            words = shlex.split(line)[2:]
            what = _lets_through(words, named)
            if what is not None:
                found.append(f"{chain} rule {number} `{shlex.join(words)}`: lets through {what}")
    return found


def _lets_through(words: Sequence[str], named: dict[str, str]) -> str | None:
    """What a rule (`iptables -S` words after `-A <chain>`) lets through of the traffic of the
    bridges in `named` (interface -> role), in words; None when it lets none of it through."""
    options: dict[str, str] = {}
    negated = False
    for i, word in enumerate(words):
        if word == "!":
            negated = True
        elif word.startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            # A negated -i/-o can match the stack's bridges whatever it names: kept as "any".
            options[word] = "" if negated and word in ("-i", "-o") else words[i + 1]
            negated = False
    target = options.get("-j") or options.get("-g") or ""
    if target in _STOPS:
        return None
    parts: list[str] = []
    for flag, preposition in (("-i", "in from"), ("-o", "out to")):
        pattern = options.get(flag)
        if pattern:
            roles = [role for bridge, role in named.items() if _interface_matches(pattern, bridge)]
            if not roles:
                return None  # names another interface: none of the stack's traffic
            which = "backend and frontend bridges" if len(roles) == 2 else f"{roles[0]} bridge"
            parts.append(f"{preposition} {pattern} (the stack's {which})")
    head = options.get("-p", "every packet")
    if "--dport" in options:
        head += f" to port {options['--dport']}"
    if "-s" in options:
        head += f" from {options['-s']}"
    if "-d" in options:
        head += f" to {options['-d']}"
    if target not in ("", "ACCEPT", "RETURN"):
        head += f" (to chain {target}, which decides)"
    return " ".join([head, *parts])


def bridge_name(network_id: str, options: dict[str, str]) -> str:
    """The host interface of a Docker bridge network: its configured name, else br-<id12>."""
    return options.get(BRIDGE_NAME_OPTION) or f"br-{network_id[:12]}"


def stack_bridges(stack: str) -> Bridges:
    """Ask the engine for the interfaces of the stack's networks (deployed first)."""
    import docker  # noqa: PLC0415 - only the I/O path needs the engine client
    from docker.errors import DockerException, NotFound  # noqa: PLC0415

    names = {role: object_name(stack, role) for role in (Role.BACKEND, Role.FRONTEND)}
    try:
        client = docker.from_env()
        found = {role: client.networks.get(name) for role, name in names.items()}
    except NotFound as exc:
        raise FirewallError(
            f"stack {stack}: a network is missing ({exc.explanation}); deploy the stack first"
        ) from exc
    except DockerException as exc:
        raise FirewallError(f"the Docker engine is not reachable: {exc}") from exc
    interfaces = {
        role: bridge_name(net.id or "", net.attrs.get("Options") or {})
        for role, net in found.items()
    }
    return Bridges(backend=interfaces[Role.BACKEND], frontend=interfaces[Role.FRONTEND])


def _runner() -> Run:
    if shutil.which(IPTABLES) is None:
        raise FirewallError("iptables is not installed; run scripts/bootstrap.sh as root")

    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        # -w: wait for the xtables lock dockerd also takes, instead of failing.
        return subprocess.run(  # noqa: S603 - fixed program, arguments built in this module
            [IPTABLES, "-w", *args], capture_output=True, text=True, check=False, timeout=30
        )

    return run


def _listings(run: Run, stack: str) -> dict[str, str]:
    listings = {}
    for chain in (*_JUMPED_FROM, *chains(stack), output_chain(stack)):
        listed = run(["-S", chain])
        listings[chain] = listed.stdout if listed.returncode == 0 else ""
    if not listings["DOCKER-USER"]:
        raise FirewallError(
            "iptables has no DOCKER-USER chain: the Docker engine is not running or programs "
            "another iptables backend (compare `iptables -V` with the rules `dockerd` made)"
        )
    return listings


def _apply(run: Run, rules: Sequence[Sequence[str]]) -> None:
    for rule in rules:
        done = run(rule)
        if done.returncode != 0:
            raise FirewallError(
                f"iptables {' '.join(rule)} failed: {done.stderr.strip() or done.returncode}"
            )


def down(stack: str, run: Run) -> int:
    """Remove the stack's rules; the number of iptables changes made."""
    if not _STACK_RE.match(stack):
        return 0  # a name no chain can carry never had rules installed
    rules = removal_rules(stack, _listings(run, stack))
    _apply(run, rules)
    return len(rules)


def up(stack: str, bridges: Bridges, run: Run) -> int:
    """Replace the stack's rules with fresh ones for `bridges`."""
    down(stack, run)
    rules = install_rules(stack, bridges)
    _apply(run, rules)
    return len(rules)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m infra.firewall",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Exit (README's table): 0 done; 2 bad input (a stack name the chains cannot "
        "take), nothing done; 3 the rules cannot be made or changed (e.g. the stack is not "
        "deployed, iptables or the engine unavailable); 5 refused: not root, nothing changed.",
    )
    parser.add_argument(
        "action",
        choices=("up", "down", "show"),
        help="up: install (or refresh) the stack's rules, as root; down: remove them; "
        "show: print the rules up would install",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    args = parser.parse_args(argv)
    stack: str = args.stack
    try:
        # Bad input before anything is asked of the engine or iptables: exit 2, as README's
        # table says for every command. Not for down: a name no chain can carry never had
        # rules, so there is nothing to remove (down()), and teardown.sh goes on.
        if args.action != "down":
            chains(stack)
    except FirewallError as exc:
        print(f"firewall: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "show":
            for rule in install_rules(stack, stack_bridges(stack)):
                say(" ".join([IPTABLES, *rule]))
            return 0
        if os.geteuid() != 0:
            print(
                f"firewall: not root: the host rules of stack {stack} were NOT "
                f"{'installed' if args.action == 'up' else 'removed'}; run "
                f"`python -m infra.firewall {args.action} --stack {stack}` as root",
                file=sys.stderr,
            )
            return 5
        run = _runner()
        if args.action == "up":
            bridges = stack_bridges(stack)
            ahead = ahead_of_stack(stack, bridges, _listings(run, stack))
            for line in ahead:
                say(f"firewall: stack {stack}: found ahead of its rules: {line}")
            count = up(stack, bridges, run)
            say(f"firewall: stack {stack}: {count} iptables rules installed")
            if ahead:
                # Not ours to delete: someone put it there, perhaps on purpose.
                say(
                    f"firewall: stack {stack}: its rules are first again; the {len(ahead)} "
                    "above stay behind them (delete one with `iptables -D <chain> <rule>` "
                    "if nobody needs it)"
                )
        else:
            count = down(stack, run)
            say(f"firewall: stack {stack}: {count} iptables changes to remove its rules")
    except FirewallError as exc:
        print(f"firewall: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    exit_with(main)


__all__ = [
    "Bridges",
    "FirewallError",
    "ahead_of_stack",
    "bridge_name",
    "chains",
    "comment",
    "down",
    "install_rules",
    "main",
    "removal_rules",
    "stack_bridges",
    "up",
]
