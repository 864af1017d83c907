"""Real public pulumi-docker programs nobody here wrote, judged by the real pack.

Each file in `tests/policy/external/` is one program transcribed to the checker's record format,
with a `SOURCE` note naming its repository and path, and the verdict and reasons it must get: for
every mandatory and advisory policy expected, the resource it names and a fragment of the reason. A
missed verdict fails, a missed reason fails, and so does a mandatory policy that fires without
being expected. Half of the programs deploy Redis. They come in every shape the pack meets:
Terraform programs for the provider pulumi-docker bridges, `docker run` scripts and compose files
(also written in Dhall), Pulumi Go and YAML programs (some as their first `pulumi preview` sends
them, with unknown values), pulumi-docker v3 property names, Swarm services, whole redis.conf
files, `sh -c` scripts that expand a password variable, images pulled through a registry mirror,
Bitnami's Redis and Valkey images, a generated password put on redis-server's command line, and a
redis.conf mounted but never loaded.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from policies import strictness
from policies.analyzer import Finding, PackServer
from policies.check import evaluate
from policies.records import Record, parse_records
from tests.policy.support import describe

pytestmark = pytest.mark.policy

EXTERNAL = Path(__file__).resolve().parent / "external"
PROGRAMS = sorted(EXTERNAL.glob("*.json"))


@cache
def program(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def records_of(data: dict[str, Any], source: str) -> list[Record]:
    return parse_records(data["records"], source=source, stack=data["stack"],
                         project=data["project"])  # fmt: skip


def judge(pack: PackServer, records: list[Record]) -> list[Finding]:
    """As `python -m policies.check --resources`: the config of the declared environment."""
    path = strictness.config_file(strictness.of_records(records))
    return evaluate(pack, records, json.loads(path.read_text(encoding="utf-8")))


def test_corpus__at_least_37_programs_half_deploying_redis_each_with_a_source() -> None:
    data = [program(p) for p in PROGRAMS]
    assert len(data) >= 37
    assert sum(d["deploysRedis"] for d in data) * 2 >= len(data)
    for path, d in zip(PROGRAMS, data, strict=True):
        assert {"repository", "path", "language"} <= set(d["SOURCE"]), path.name
        assert d["expect"]["verdict"] in ("pass", "reject"), path.name


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program__gets_its_verdict_and_every_reason(pack: PackServer, path: Path) -> None:
    data = program(path)
    expect = data["expect"]
    findings = judge(pack, records_of(data, path.name))
    mandatory = {f.policy for f in findings if f.level == "mandatory"}
    verdict = "reject" if mandatory else "pass"
    assert verdict == expect["verdict"], describe(findings)
    assert mandatory == set(expect["mandatory"]), describe(findings)
    for level in ("mandatory", "advisory"):
        for policy, reasons in expect[level].items():
            for resource, fragment in reasons:
                assert any(
                    f.policy == policy
                    and f.level == level
                    and f.resource == resource
                    and fragment in f.message
                    for f in findings
                ), f"missed {level} {policy} on {resource}: {fragment!r}\n{describe(findings)}"
