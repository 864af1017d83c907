"""Metamorphic tests over the project's own rendered dev stack, which passes the pack.

One relation: start Redis in another valid shape (the same argv as one `sh -c` string, as a
multi-line script, with each option and its value as one word, behind `tini --`, split between
`entrypoints` and `command`), and the stack still passes; add ONE insecure setting from the
security catalogue (docs/security-catalog.md), in a shape drawn at random (in place or appended,
where it wins; on argv, in a command string, in one branch of an `if ... else ... fi`; a port as
an int or a string), and the rule that owns it rejects the stack, naming the resource that
carries it. The second property: any value, of any type, in a property the rules read on the
real stack's Redis or app container reaches a verdict, never an exception (a crash is anything
StackRule.run / ResourceRule.run let out: they turn an unreadable property into a violation).

The rules are called directly (tests/policy/support.py: what the pack adapter runs), about 0.3 s
a stack; test_policy_corpus.py proves the same weaknesses through the pack's gRPC interface. As
the entry-point fuzz suite does (README, "The two commands"), the same examples are drawn every
run unless SECURE_REDIS_FUZZ=explore; SECURE_REDIS_FUZZ_SCALE=N draws N times as many.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.records import Record
from policies.rules import RULES
from policies.rules._model import Enforcement, ResourceRule, StackRule
from tests.policy.conftest import stack_config
from tests.policy.support import generated_password, mutate, to_resources
from tests.policy.test_policy_odd_shapes import JSON, PROP_NAMES
from tests.support.fuzzing import drawn

pytestmark = pytest.mark.policy

DRAWN = drawn(12)
REDIS, APP = "redis-container", "app-container"
LITERAL_PASSWORD = generated_password(24)  # generated: never a literal in the repository
Props = dict[str, Any]


def judged(records: list[Record]) -> dict[str, set[str]]:
    """Mandatory rule -> the names of the resources it rejects, as the pack would."""
    resources = to_resources(records)
    config = stack_config(records[0].stack)
    found: dict[str, set[str]] = {}
    for rule in RULES:
        if rule.enforcement is not Enforcement.MANDATORY:
            continue
        if isinstance(rule, StackRule):
            for violation in rule.run(resources, config.get(rule.name)):
                found.setdefault(rule.name, set()).add(violation.urn.rsplit("::", 1)[-1])
        else:
            for resource in resources:
                if rule.run(resource, config.get(rule.name)):
                    found.setdefault(rule.name, set()).add(resource.name)
    return found


# -- shapes: the same redis-server argv, started another valid way ---------------------------------


def _joined(argv: list[str]) -> list[str]:
    """Each `--option value` as one word, which redis-server reads as the line `option value`."""
    words, rest = argv[:2], argv[2:]  # redis-server and its config file
    pairs = zip(rest[::2], rest[1::2], strict=True)
    return words + [f"{option} {shlex.quote(value)}" for option, value in pairs]


def _branches(first: list[str], second: list[str]) -> list[str]:
    script = (
        f'if [ -n "$REDIS_REPLICA" ]; then\n  exec {shlex.join(first)}\nelse\n'
        f"  exec {shlex.join(second)}\nfi\n"
    )
    return ["sh", "-c", script]


Shape = Callable[[list[str], list[str]], Props]
"""(the base argv, the argv with the weakness) -> the container's entrypoints and command."""
SHAPES: dict[str, Shape] = {
    "exec form": lambda _, argv: {"command": argv},
    "one word per option": lambda _, argv: {"command": _joined(argv)},
    "entrypoint and command": lambda _, argv: {"entrypoints": argv[:1], "command": argv[1:]},
    "behind tini": lambda _, argv: {"command": ["tini", "--", *argv]},
    "sh -c string": lambda _, argv: {"command": ["sh", "-c", f"exec {shlex.join(argv)}"]},
    "multi-line script": lambda _, argv: {
        "entrypoints": ["/bin/sh", "-ec"],
        "command": [f"# start Redis\nset -e\ncd /data\nexec {shlex.join(argv)}\n"],
    },
    "else branch": lambda base, argv: {"command": _branches(base, argv)},
    "then branch": lambda base, argv: {"command": _branches(argv, base)},
}


def _started(shape: Shape, base: list[str], argv: list[str]) -> Callable[[Props], None]:
    def change(props: Props) -> None:
        props.pop("entrypoints", None)
        props.update(shape(base, argv))

    return change


# -- weaknesses: one insecure setting each, owned by one rule -----------------------------------


@dataclass(frozen=True)
class Option:
    """redis-server `option` set to an insecure value: the rule that owns it must reject."""

    owner: str
    option: str
    values: tuple[str, ...]
    also: frozenset[str] = frozenset()
    """Mandatory rules the value trips as well, by what it means (not by its shape)."""


OPTIONS = (
    Option("redis-tls-only", "--port", ("6379", "6380")),
    Option("redis-tls-configured", "--tls-port", ("0",)),
    Option("redis-protected-mode-on", "--protected-mode", ("no",)),
    Option("redis-client-cert-required", "--tls-auth-clients", ("no", "optional")),
    Option("redis-tls-protocols-modern", "--tls-protocols", ("TLSv1.1 TLSv1.2", "TLSv1 TLSv1.3")),
    Option("redis-escape-hatches-disabled", "--enable-debug-command", ("yes", "local")),
    Option("redis-escape-hatches-disabled", "--enable-module-command", ("yes", "local")),
    Option("redis-maxmemory-below-limit", "--maxmemory", ("1gb", "4096mb")),
    Option("secret-argv-not-plain", "--requirepass", (LITERAL_PASSWORD,)),
)


def _weakened(argv: list[str], option: str, value: str, appended: bool) -> list[str]:
    """`option value` in place of the stack's own, or appended after it (the last one wins)."""
    if appended or option not in argv:
        return [*argv, option, value]
    weak = list(argv)
    weak[weak.index(option) + 1] = value
    return weak


def _redis_argv(records: list[Record]) -> list[str]:
    props = next(r.props for r in records if r.name == REDIS)
    assert "entrypoints" not in props, "the rendered Redis is started by its command alone"
    return list(props["command"])


@pytest.mark.parametrize("shape", SHAPES)
def test_the_stack_started_in_another_shape__still_passes(
    rendered: dict[str, list[Record]], shape: str
) -> None:
    records = rendered["dev"]
    base = _redis_argv(records)
    assert judged(mutate(records, REDIS, _started(SHAPES[shape], base, base))) == {}


@pytest.mark.parametrize("shape", SHAPES)
@drawn(4)
@given(
    option=st.sampled_from(OPTIONS),
    choice=st.integers(min_value=0, max_value=7),
    appended=st.booleans(),
)
def test_one_insecure_option_in_every_shape__is_rejected_by_its_rule(
    rendered: dict[str, list[Record]], shape: str, option: Option, choice: int, appended: bool
) -> None:
    records = rendered["dev"]
    base = _redis_argv(records)
    value = option.values[choice % len(option.values)]
    weak = _weakened(base, option.option, value, appended)
    found = judged(mutate(records, REDIS, _started(SHAPES[shape], base, weak)))
    assert REDIS in found.get(option.owner, set()), (option, value, shape, found)
    assert set(found) <= {option.owner, *option.also}, (option, value, shape, found)


@DRAWN
@given(
    internal=st.sampled_from([6380, "6380"]),
    external=st.sampled_from([16380, "16380", 6380]),
    ip=st.sampled_from(["127.0.0.1", "0.0.0.0", None]),
)
def test_a_published_redis_port_as_int_or_string__is_rejected(
    rendered: dict[str, list[Record]], internal: Any, external: Any, ip: str | None
) -> None:
    port = {"internal": internal, "external": external, **({"ip": ip} if ip else {})}
    records = mutate(rendered["dev"], REDIS, lambda p: p.update(ports=[port]))
    found = judged(records)
    assert REDIS in found.get("network-redis-no-published-port", set()), (port, found)
    assert set(found) <= {"network-redis-no-published-port", "network-port-bound-to-interface"}


@DRAWN
@given(
    name=st.sampled_from(["REDIS_PASSWORD", "redis_password", "CACHE_AUTH_TOKEN", "DB_PASS"]),
    position=st.integers(min_value=0, max_value=9),
)
def test_a_password_in_the_apps_env_anywhere__is_rejected(
    rendered: dict[str, list[Record]], name: str, position: int
) -> None:
    def change(props: Props) -> None:
        envs = props["envs"]
        envs.insert(position % (len(envs) + 1), f"{name}={LITERAL_PASSWORD}")

    found = judged(mutate(rendered["dev"], APP, change))
    assert APP in found.get("secret-env-not-plain", set()), (name, found)
    assert set(found) == {"secret-env-not-plain"}, found


# -- any value in a property the rules read: a verdict, never an exception ---------------------


@DRAWN
@given(
    name=st.sampled_from([REDIS, APP]),
    prop=PROP_NAMES,
    value=JSON,
    nested=st.booleans(),
)
def test_any_value_in_a_property_of_the_real_stack__never_crashes_a_rule(
    rendered: dict[str, list[Record]], name: str, prop: str, value: Any, nested: bool
) -> None:
    def change(props: Props) -> None:
        old = props.get(prop)
        if nested and isinstance(old, list) and old:
            old[0] = copy.deepcopy(value)  # one entry of a list the rules walk
        else:
            props[prop] = copy.deepcopy(value)

    resources = to_resources(mutate(rendered["dev"], name, change))
    for rule in RULES:
        if isinstance(rule, ResourceRule):
            for resource in resources:
                assert all(isinstance(m, str) for m in rule.run(resource))
        else:
            assert all(isinstance(v.message, str) for v in rule.run(resources))
