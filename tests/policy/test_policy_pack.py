"""The real pack over its analyzer gRPC interface: what it serves, the real stacks, config."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from policies.analyzer import ConfigError, PackServer, resolve_config
from policies.records import Record, parse_records
from policies.rules import RULES, ResourceRule, Rule
from tests.policy.conftest import Analyze, stack_config
from tests.policy.support import describe, mandatory, mutate, set_arg

UNKNOWN_BOOLEAN = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"  # pulumi_policy's preview sentinel


def test_pack_serves_exactly_the_rules(pack: PackServer) -> None:
    assert {p.name for p in pack.policies()} == {r.name for r in RULES}


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_pack_serves_the_rule_with_its_metadata(pack: PackServer, rule: Rule) -> None:
    policy = next(p for p in pack.policies() if p.name == rule.name)
    assert policy.description == rule.description
    assert policy.enforcement == rule.enforcement.value
    assert policy.kind == ("resource" if isinstance(rule, ResourceRule) else "stack")
    assert {k: v.get("default") for k, v in policy.config_schema.items()} == {
        k: v.get("default") for k, v in rule.config_schema.items()
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack__has_no_finding_at_all(
    analyze: Analyze, rendered: dict[str, list[Record]], stack: str
) -> None:
    findings = analyze(rendered[stack])
    assert findings == [], describe(findings)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack__redacted_preview_records_also_pass(
    analyze: Analyze, rendered: dict[str, list[Record]], stack: str
) -> None:
    """What `infra.preview --json | policies.check --resources` sees: secrets are "[secret]"."""
    from infra.render import render_stack  # noqa: PLC0415

    records = parse_records(
        render_stack(stack).records(redact=True), source=stack, stack="x", project="x"
    )
    findings = analyze(records)
    assert not mandatory(findings), describe(findings)


def test_per_stack_config__dev_is_rejected_under_production_thresholds(
    analyze: Analyze, rendered: dict[str, list[Record]]
) -> None:
    findings = analyze(rendered["dev"], stack_config("prod"))
    assert mandatory(findings) == {
        "redis-tls-protocols-modern",
        "secret-password-length",
        "tls-certificate-validity-bounded",  # dev's 90-day leaves; prod.json allows 30
    }


@pytest.mark.parametrize(("stack", "limit"), [("dev", 90), ("prod", 30)])
def test_leaf_validity__a_looser_config_cannot_lift_the_environments_limit(
    analyze: Analyze, rendered: dict[str, list[Record]], stack: str, limit: int
) -> None:
    """The stack's own leaves pass at its limit; one day more is rejected even under 397."""
    config = stack_config(stack) | {
        "tls-certificate-validity-bounded": {"maximumLeafValidityDays": 397}
    }
    server = next(r for r in rendered[stack] if r.name == "tls-redis-server")
    assert server.props["validityDays"] <= limit  # what the program issues (infra/profiles.py)
    assert analyze(rendered[stack], config) == []
    longer = mutate(rendered[stack], server.name, lambda p: p.update(validityDays=limit + 1))
    findings = analyze(longer, config)
    assert [(f.policy, f.level, f.urn, f.message) for f in findings] == [
        (
            "tls-certificate-validity-bounded",
            "mandatory",
            server.urn,
            f"LeafCertificate tls-redis-server must be valid for at most {limit} days in this "
            f"stack's environment and renew early (earlyRenewalHours / renewBeforeDays).",
        )
    ], describe(findings)


def test_config__enforcement_override_travels_through_configure(
    analyze: Analyze, rendered: dict[str, list[Record]]
) -> None:
    writable = mutate(rendered["dev"], "app-container", lambda p: p.update(readOnly=False))
    assert "container-read-only-rootfs" in mandatory(analyze(writable))
    downgraded = analyze(writable, {"container-read-only-rootfs": "advisory"})
    assert "container-read-only-rootfs" not in mandatory(downgraded)
    assert any(f.policy == "container-read-only-rootfs" for f in downgraded)
    assert analyze(writable, {"all": "disabled"}) == []
    # The Pulumi CLI reads `all` as an object as well (pulumi pkg/resource/analyzer/config.go).
    assert analyze(writable, {"all": {"enforcementLevel": "disabled"}}) == []


def test_secret_leaves_reach_policies_unwrapped(
    analyze: Analyze, rendered: dict[str, list[Record]]
) -> None:
    """The server key travels wrapped as a secret, as the engine sends it; rules see its value."""
    dev = rendered["dev"]
    init = next(r for r in dev if r.name == "redis-material-init")
    assert any(p[-1] == "content" for p in init.secret_paths)
    server_key = next(u for u in init.props["uploads"] if u["file"].endswith("server.key"))
    reused = mutate(
        dev,
        "redis-material-init",
        lambda p: next(u for u in p["uploads"] if u["file"].endswith("healthcheck.key")).update(
            content=server_key["content"]
        ),
    )
    assert "tls-private-key-unique" in mandatory(analyze(reused))


def test_unknown_value_at_preview__is_an_advisory_not_a_pass_or_a_crash(
    analyze: Analyze, rendered: dict[str, list[Record]]
) -> None:
    unknown = mutate(rendered["dev"], "app-container", lambda p: p.update(readOnly=UNKNOWN_BOOLEAN))
    findings = [f for f in analyze(unknown) if f.policy == "container-read-only-rootfs"]
    assert len(findings) == 1
    assert findings[0].level == "advisory"
    assert "can't run policy" in findings[0].message


UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _as_first_preview(records: list[Record]) -> list[Record]:
    """What `pulumi preview` sends on an empty state: images and generated files unknown."""

    def unknown(props: dict[str, object]) -> None:
        if "image" in props:
            props["image"] = UNKNOWN_STRING
        for entry in props.get("uploads", []):  # type: ignore[attr-defined]
            entry["content"] = UNKNOWN_STRING

    for name in ("redis-container", "app-container", "redis-material-init", "app-material-init"):
        records = mutate(records, name, unknown)
    return records


def test_first_preview__unknowns_defer_rules_but_argv_settings_are_still_judged(
    analyze: Analyze, rendered: dict[str, list[Record]]
) -> None:
    preview = _as_first_preview(rendered["dev"])
    findings = analyze(preview)
    assert not mandatory(findings), describe(findings)
    deferred = {f.policy for f in findings if "can't run policy" in f.message}
    assert {"image-container-pinned", "redis-default-user-disabled"} <= deferred
    assert "redis-tls-only" not in deferred
    plaintext = mutate(preview, "redis-container", lambda p: set_arg(p, "--port", "6379"))
    assert "redis-tls-only" in mandatory(analyze(plaintext))


@pytest.mark.parametrize(
    ("config", "error"),
    [
        pytest.param({"no-such-policy": "advisory"}, "no policy", id="unknown-policy"),
        pytest.param({"redis-tls-protocols-modern": {"minimumVersion": "TLSv1"}}, "one of",
                     id="bad-enum"),
        pytest.param({"secret-password-length": {"minimumLength": "long"}}, "integer",
                     id="bad-type"),
        pytest.param({"secret-password-length": {"nope": 1}}, "no config property",
                     id="unknown-property"),
        pytest.param({"all": "sometimes"}, "enforcement level", id="bad-level"),
        pytest.param({"all": {"enforcementLevel": "sometimes"}}, "enforcement level",
                     id="bad-level-object"),
        pytest.param({"all": 5}, "all.*a level or an object", id="all-number"),
        pytest.param({"all": ["disabled"]}, "all.*a level or an object", id="all-list"),
        pytest.param({"redis-tls-only": None}, "redis-tls-only.*a level or an object",
                     id="policy-null"),
        pytest.param({"all": {"minimumLength": 48}}, "all.*only enforcementLevel",
                     id="all-property"),
        pytest.param({"redis-tls-only": {"enforcementLevel": 0}}, "enforcementLevel",
                     id="level-number"),
        pytest.param({"all": {"enforcementLevel": []}}, "all.*a level or an object",
                     id="a-list-for-a-level"),
    ],
)  # fmt: skip
def test_resolve_config__rejects_bad_config(
    pack: PackServer, config: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        resolve_config(pack.policies(), config)


@pytest.mark.parametrize(
    "config",
    [{"all": "advisory"}, {"all": {"enforcementLevel": "advisory"}}],
    ids=["level", "object"],
)
def test_resolve_config__all_as_a_level_or_an_object_sets_every_policy(
    pack: PackServer, config: dict[str, object]
) -> None:
    """The Pulumi CLI reads a policy's entry, `all` included, as a level or as an object with
    `enforcementLevel` (its docs show `"all": {"enforcementLevel": "disabled"}`), then sets
    every policy to `all`'s level before each policy's own: both forms lower every policy."""
    resolved = resolve_config(pack.policies(), config)
    assert {level for level, _ in resolved.values()} == {"advisory"}
    named = resolve_config(pack.policies(), {**config, "redis-tls-only": "mandatory"})
    assert named["redis-tls-only"][0] == "mandatory"


def test_stack_config_files__tighten_production_and_never_downgrade(pack: PackServer) -> None:
    dev = resolve_config(pack.policies(), stack_config("dev"))
    prod = resolve_config(pack.policies(), stack_config("prod"))
    assert prod["redis-tls-protocols-modern"][1]["minimumVersion"] == "TLSv1.3"
    assert dev["redis-tls-protocols-modern"][1]["minimumVersion"] == "TLSv1.2"
    assert prod["secret-password-length"][1]["minimumLength"] == 48


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_environment_config__never_changes_an_enforcement_level(
    pack: PackServer, environment: str
) -> None:
    """STACK-02: no environment's config weakens (or otherwise changes) a policy's level."""
    resolved = resolve_config(pack.policies(), stack_config(environment))
    assert {name: level for name, (level, _) in resolved.items()} == {
        r.name: r.enforcement.value for r in RULES
    }


def test_records_keep_their_urn_and_stack(rendered: dict[str, list[Record]]) -> None:
    records = parse_records(
        json.loads(json.dumps([{"type": r.type, "name": r.name, "props": {}} for r in rendered["dev"][:2]])),  # noqa: E501
        source="t", stack="qa", project="p",
    )  # fmt: skip
    assert {r.stack for r in records} == {"qa"}
    assert replace(records[0], urn="urn:pulumi:x::y::t::n").stack == "x"
