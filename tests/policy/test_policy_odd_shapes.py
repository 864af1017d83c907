"""Generated record files in any shape reach a verdict or a one-line RecordError, never a crash.

The checker's path in `python -m policies.check --resources F --stack-name S`, minus the
process: `parse_records`, the environment the records declare (`strictness.of_records`), and
the real pack over its analyzer interface. Property values are arbitrary JSON (wrong types,
NaN and infinities as Python's JSON reader returns them, nested lists and objects) under the
names the rules read, on the resource types the rules judge.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import strictness
from policies.analyzer import PackServer
from policies.check import evaluate, one_per_unreadable_property
from policies.records import RecordError, parse_records
from policies.rules._model import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, SERVICE, VOLUME

pytestmark = pytest.mark.policy

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.nan, math.inf, -math.inf]),  # often enough in a few examples
        st.text(max_size=12),
        st.sampled_from(["redis-server", "--port", "0", "ENVIRONMENT=development", "6379"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
PROP_NAMES = st.sampled_from(
    ["image", "command", "entrypoints", "envs", "ports", "memory", "user", "uploads", "mounts",
     "volumes", "networksAdvanced", "capabilities", "securityOpts", "healthcheck", "taskSpec",
     "build", "name", "internal", "driverOpts"]
)  # fmt: skip
RECORD = st.fixed_dictionaries(
    {
        "type": st.sampled_from([CONTAINER, SERVICE, NETWORK, VOLUME, IMAGE, REMOTE_IMAGE]),
        "name": st.sampled_from(["a", "b", "c"]),
        "props": st.dictionaries(PROP_NAMES, JSON, max_size=5),
    }
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.lists(RECORD, min_size=1, max_size=3, unique_by=lambda r: (r["type"], r["name"])))
def test_any_record_shape__a_verdict_or_a_one_line_record_error(
    pack: PackServer, data: list[dict[str, Any]]
) -> None:
    # Through a JSON round trip, as the checker reads files (json.dumps writes NaN/Infinity).
    raw = json.loads(json.dumps(data))
    try:
        records = parse_records(raw, source="f.json", stack="qa", project="p")
    except RecordError as exc:
        error = str(exc)
    else:
        error = ""
    if error:
        assert len(error.splitlines()) == 1
        return
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    findings = evaluate(pack, records, config)
    assert all(f.level in ("mandatory", "advisory") for f in findings)


def _foreign_with(name: str, **props: Any) -> list[Any]:
    from tests.policy import foreign  # noqa: PLC0415 - generates certificates on first use

    raw = foreign.raw()
    next(item for item in raw if item["name"] == name)["props"].update(props)
    return foreign.records(raw)


@pytest.mark.parametrize(
    ("resource", "props", "policy", "named"),
    [
        ("cache-net", {"internal": "true"}, "network-redis-internal-only",
         "Network cache-net (shop-prod-cache): internal must be true or false"),
        ("cache", {"publishAllPorts": "true"}, "network-redis-no-published-port",
         "Container cache (shop-prod-cache): publishAllPorts must be true or false"),
    ],
)  # fmt: skip
def test_stack_rule_on_a_property_of_the_wrong_type__names_the_resource_and_property(
    pack: PackServer, resource: str, props: dict[str, Any], policy: str, named: str
) -> None:
    """A stack-wide rule that cannot read a property says whose and which, as a resource rule
    does, instead of "a resource of this stack: a property must be ..."."""
    records = _foreign_with(resource, **props)
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    findings = [f for f in evaluate(pack, records, config) if f.policy == policy]
    assert [f.level for f in findings] == ["mandatory"], findings
    assert findings[0].message.startswith(named), findings[0].message
    assert findings[0].resource == resource


def test_every_stack_rule_that_cannot_read_networks__names_the_container(
    pack: PackServer,
) -> None:
    """networksAdvanced as one object instead of a list: every stack rule that reads it says
    whose it is (red before: "a resource of this stack: networksAdvanced must be a list")."""
    records = _foreign_with("cache", networksAdvanced={"name": "shop-prod-cache"})
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    unreadable = [f for f in evaluate(pack, records, config) if "cannot read it" in f.message]
    assert len(unreadable) > 10
    for finding in unreadable:
        assert finding.message.startswith("Container cache"), (finding.policy, finding.message)
        assert "networksAdvanced must be a list" in finding.message
        assert finding.resource == "cache"


@pytest.mark.parametrize(
    ("props", "said"),
    [
        ({"command": "redis-server /secrets/redis.conf"}, "command must be a list, not a string"),
        ({"uploads": "redis.conf"}, "uploads must be a list, not a string"),
        ({"mounts": {"target": "/data"}}, "mounts must be a list, not an object"),
        ({"envs": {"A": "b"}}, "envs must be a list, not an object"),
    ],
    ids=["command", "uploads", "mounts", "envs"],
)
def test_every_rule_that_cannot_read_a_property__names_the_resource_and_what_it_got(
    pack: PackServer, props: dict[str, Any], said: str
) -> None:
    """Each rule that needed the wrong-typed property says whose it is and what was given
    (red before: the TLS, secret-sharing and volume stack rules said "a resource of this
    stack", and no message said what the value was)."""
    records = _foreign_with("cache", **props)
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    unreadable = [f for f in evaluate(pack, records, config) if "cannot read it" in f.message]
    assert unreadable
    named = ("Container cache", "Container cache (shop-prod-cache)",
             "Redis container cache (shop-prod-cache)")  # fmt: skip
    for finding in unreadable:
        assert finding.message.split(":")[0] in named, (finding.policy, finding.message)
        assert said in finding.message, (finding.policy, finding.message)
        assert finding.resource == "cache"


def test_tls_key_mount_read_only_given_as_a_string__is_a_type_error_not_a_writable_mount(
    pack: PackServer,
) -> None:
    """`readOnly: "true"` on the mount holding the TLS key: the message says the type is
    wrong (red before: "must mount the directory holding its TLS key read-only", which it
    seemed to do)."""
    raw_mounts = [
        {"type": "volume", "source": "shop-prod-cache-secrets", "target": "/secrets",
         "readOnly": "true"},
        {"type": "volume", "source": "shop-prod-cache-data", "target": "/data"},
    ]  # fmt: skip
    records = _foreign_with("cache", mounts=raw_mounts)
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    findings = [
        f for f in evaluate(pack, records, config) if f.policy == "redis-tls-key-mount-read-only"
    ]
    assert [f.level for f in findings] == ["mandatory"]
    assert "mounts[0].readOnly must be true or false" in findings[0].message, findings[0].message


def _with_value_at(
    raw: list[dict[str, Any]], name: str, path: tuple[str | int, ...], value: Any
) -> list[dict[str, Any]]:
    holder: Any = next(item for item in raw if item["name"] == name)["props"]
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("stack", "resource", "path", "value", "said"),
    [
        ("containers", "cache", ("user",), 5, "user must be a string, not a number"),
        ("containers", "web", ("ports", 0), "8443", "ports[0] must be an object, not a string"),
        ("containers", "web", ("ports", 0, "internal"), "https",
         "ports[0].internal must be a number, not a string that is no number"),
        ("containers", "cache", ("mounts", 0), 3, "mounts[0] must be an object, not a number"),
        ("containers", "cache", ("mounts", 0, "type"), 3,
         "mounts[0].type must be a string, not a number"),
        ("containers", "cache", ("networksAdvanced", 0, "name"), 3,
         "networksAdvanced[0].name must be a string, not a number"),
        ("containers", "cache", ("ulimits", 0), "nproc=64",
         "ulimits[0] must be an object, not a string"),
        ("swarm-services", "cache", ("taskSpec", "containerSpec", "mounts", 0), "/secrets",
         "taskSpec.containerSpec.mounts[0] must be an object, not a string"),
        ("swarm-services", "web", ("taskSpec", "containerSpec", "mounts", 0, "type"), 3,
         "taskSpec.containerSpec.mounts[0].type must be a string, not a number"),
        ("swarm-services", "cache", ("taskSpec", "networksAdvanceds", 0, "name"), 3,
         "taskSpec.networksAdvanceds[0].name must be a string, not a number"),
        ("swarm-services", "cache", ("taskSpec", "containerSpec", "healthcheck", "tests"),
         "redis-cli ping",
         "taskSpec.containerSpec.healthcheck.tests must be a list, not a string"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)  # fmt: skip
def test_a_value_of_the_wrong_type__is_one_row_naming_its_path(
    pack: PackServer,
    stack: str,
    resource: str,
    path: tuple[str | int, ...],
    value: Any,
    said: str,
) -> None:
    """Every rule that needs the property fails closed on it, and policies.check's table
    shows it once, naming the path to fix. Red before: a Service's mount that is not an
    object stopped the pack's stack policies with an AttributeError; the same property was
    named two ways ("a property must be a string" beside "user must be a string",
    "ports.internal" beside "ports[0].internal"), so the table showed it in two rows and one
    of them did not say which property."""
    from tests.policy import foreign, swarm  # noqa: PLC0415 - generates certificates on first use

    module = foreign if stack == "containers" else swarm
    records = module.records(_with_value_at(module.raw(), resource, path, value))
    config = json.loads(strictness.config_file(strictness.of_records(records)).read_text())
    rows = one_per_unreadable_property(evaluate(pack, records, config))
    unreadable = [f for f in rows if "cannot read it" in f.message]
    assert len(unreadable) == 1, [f.message for f in unreadable]
    assert said in unreadable[0].message, unreadable[0].message
    assert unreadable[0].resource == resource
    assert unreadable[0].level == "mandatory"
