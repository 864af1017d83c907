"""Helpers shared by the policy tests: run a pure rule, mutate stacks, read findings."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from infra.proppath import leads_to_leaf
from policies.analyzer import Finding
from policies.records import Record
from policies.rules import BY_NAME, Resource, ResourceRule

Props = dict[str, Any]


def generated_password(nbytes: int) -> str:
    """A password made for this run (never a literal in the repository) that starts with a
    letter: `secrets.token_urlsafe`'s first character is `-` in one run of 64, and a command
    line's word that starts with `-` is read as the next flag, not as the value of the flag
    before it (`--redis.password -mvi2...` was found no secret, in a CI run of 2026-12-04)."""
    return "p" + secrets.token_urlsafe(nbytes)


def to_resources(records: Iterable[Record]) -> list[Resource]:
    """What the pack adapter builds from the engine's request, for calling rules directly."""
    return [
        Resource(
            type=r.type,
            name=r.name,
            props=r.props,
            urn=r.urn,
            secret_outputs=frozenset(r.options.get("additionalSecretOutputs") or ()),
            dependencies=tuple(r.options.get("dependencies") or ()),
            property_dependencies=tuple(
                (key, tuple(urns))
                for key, urns in (r.options.get("propertyDependencies") or {}).items()
            ),
        )
        for r in records
    ]


def run_rule(
    rule_name: str, records: Sequence[Record], config: Mapping[str, Any] | None = None
) -> list[str]:
    """Every message `rule_name` reports on the stack, calling the pure rule (no pack)."""
    rule = BY_NAME[rule_name]
    resources = to_resources(records)
    if isinstance(rule, ResourceRule):
        return [m for r in resources for m in rule.run(r, config)]
    return [v.message for v in rule.run(resources, config)]


def find(records: Sequence[Record], name: str) -> Record:
    for record in records:
        if record.name == name:
            return record
    raise KeyError(f"no resource named {name!r}; have {[r.name for r in records]}")


def mutate(
    records: Sequence[Record],
    name: str,
    change: Callable[[Props], object],
    *,
    secret_outputs: Sequence[str] | None = None,
) -> list[Record]:
    """A copy of the stack where resource `name`'s props went through `change` (in place)."""
    find(records, name)  # fail loudly on a typo
    result = []
    for record in records:
        if record.name != name:
            result.append(record)
            continue
        props = copy.deepcopy(dict(record.props))
        change(props)
        options = dict(record.options)
        if secret_outputs is not None:
            options["additionalSecretOutputs"] = list(secret_outputs)
        paths = tuple(p for p in record.secret_paths if leads_to_leaf(props, p))
        result.append(replace(record, props=props, options=options, secret_paths=paths))
    return result


def add(
    records: Sequence[Record], type_: str, name: str, props: Props, **options: Any
) -> list[Record]:
    """A copy of the stack with one more resource, in the same stack and project."""
    first = records[0]
    urn = f"urn:pulumi:{first.stack}::{first.project}::{type_}::{name}"
    return [*records, Record(type_, name, props, urn, options)]


def upload(props: Props, basename: str) -> Props:
    """The `uploads[]` entry whose file has this base name."""
    for entry in props.get("uploads", []):
        if str(entry.get("file", "")).rsplit("/", 1)[-1] == basename:
            return entry  # type: ignore[no-any-return]
    raise KeyError(f"no upload named {basename!r}")


def set_arg(props: Props, option: str, value: str | None) -> None:
    """Replace (or with None remove) `--option value` in a redis-server command."""
    command = props["command"]
    index = command.index(option)
    if value is None:
        del command[index : index + 2]
    else:
        command[index + 1] = value


@functools.cache
def _reasons() -> dict[str, Any]:
    path = Path(__file__).resolve().parent / "expected_reasons.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def assert_reasons(table: str, request: pytest.FixtureRequest, messages: list[str]) -> None:
    """The case's messages are exactly those `expected_reasons.json` holds for it."""
    case = request.node.callspec.id
    assert messages == _reasons()[table][case], f"{table}/{case}: {messages}"


def mandatory(findings: Iterable[Finding]) -> set[str]:
    return {f.policy for f in findings if f.level == "mandatory"}


def describe(findings: Iterable[Finding]) -> str:
    return "\n".join(f"  {f.level} {f.policy} [{f.resource}] {f.message}" for f in findings)


def weak_rsa_certificate() -> str:
    """A self-signed certificate on a 1024-bit RSA key (TLS-07: too weak)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()
