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
Bitnami's Redis and Valkey images (judged by the config their setup writes from REDIS_* and
VALKEY_* variables; one image run with `redis-server` as its command, which skips that setup), a
generated password put on redis-server's command line, two official Redis 8 servers given one
literal password on argv, redis-stack loading a config only bind-mounted from the host, a
redis.conf mounted but never loaded, a start script that empties the uploaded redis.conf
(`envsubst < f > f`) before Redis reads it, options given with their values as one argument
(`--appendonly yes`; ` --save 60 1 ...`, which redis-server takes for its config file), a
Prometheus exporter given the server's password as its own `--redis.password` flag, a Filebeat
image whose name ends in `_redis` on a registry with a port (no Redis), a C# ComponentResource on
pulumi-docker 3, KeyDB loading the config its image ships, a Bitnami-derived Redis under another
name, Dragonfly on the host network, a Redis 3 Swarm service, one custom image that is a
master, replica or sentinel by its MODE variable, a Java client (Redisson node) in Redis's network
namespace (`--network container:redis-node`), a master, replica and sentinel on the host's
network given one password on each command line, Valkey reading its whole config from its
stdin (`sh script | exec valkey-server -`, on an internal network: the pack says it cannot
see that config), redis-stack-server given a redis.conf that sets protected-mode yes (its own
`--protected-mode no` after the file wins) with REDIS_ARGS that only the bypassed entrypoint
reads and RedisInsight's port published, a privileged Redis from a private registry with a
literal requirepass in its uploaded redis.conf and /etc/localtime mounted, a Redis 4-era
sample redis.conf (no bind, no protected-mode line) run by today's untagged image with an
option after it, a server given only `--save` and `--loglevel`, Bitnami's `run.sh` started
from `bash -c` (its setup skipped), an entrypoint replaced by an uploaded bash script that
names the password only as `$REDIS_PASSWORD` in an ACL rule and on argv (no secret file: it
stays executable), a Terraform module whose command is conditional on its password
(`letmein` on argv and in env), and two of the provider's documented Swarm services: one
with every task-spec knob (root, SELinux disabled, a secret given fileMode 0777), one pinned
by a data source's repo digest that gives only a target port (Swarm publishes it anyway), the
official image given only options with its password written out on argv and in a `--health-cmd`,
Redis 5 given its password through `sh -c` from a variable, a Dockerfile's exec-form CMD whose
password is the text `${REDIS_PASSWORD}`, Valkey given a REDIS_PASSWORD variable nothing reads,
and a TLS-only Redis started by a bind-mounted script from an image that bakes its keys in.

`tests/policy/external_programs/` holds more, translated to Python and run as the engine runs a
program: under Pulumi's mock runtime (tests/policy/program_render.py), so the pulumi-docker SDK
itself writes the properties the pack reads. They add Redis Sentinel (started three ways, and
Bitnami's image), cluster nodes, a Swarm service, the host network, redis-stack, Valkey started by
a script, options after the image only, Dragonfly, Redis inside a ComponentResource (its
resources' URNs carry the component's type), two Go programs' plain containers, two Python
programs' nginx (by tag; on a host port Docker picks) and two Terraform programs for the provider
pulumi-docker bridges (Redis published on every interface; a home server's Redis on a bridge with
masquerading off but not internal, beside Postgres with its password in env), a monitoring
exporter given the host's / , /proc and /sys through a Docker host reached over ssh, MySQL and web
servers joining an internal network by its ID (Terraform), and a Swarm Redis service pinned by
digest that joins an overlay network by its ID and mounts its volume by the volume's ID
(Terraform modules), a Swarm playground's Ghost and MySQL services sharing the database
password in their env (Terraform 0.11), and two Redis servers that join their network by
network mode, `--network NAME` (a `docker run` onto an attachable overlay network; a SaltStack
pillar's tozd/redis on a network declared elsewhere), a Bitnami redis-cluster test bed configured
by REDIS_TLS_* variables (its cluster creator publishes nothing), RedisLabs' redismod image
given only options, Terraform `count` replicas of Redis sharing one literal password in env
and on argv, redis-stack started by its own script with the password in REDIS_ARGS and through
its `redis-stack-server` wrapper, EMQX's CI Redis given TLS options one word per option and
value with its plaintext port left on, docker-zulip's Redis started by the official image's
docker-entrypoint.sh from `sh -euc`, its password read from a Compose secret, a Compose Redis
given `$$REDIS_PASSWORD` in exec form (its password is that text), a production compose file's
Redis run with the file's 22-character default password, three sentinels of an image built FROM
redis that show only port 26379 and their quorum and failover variables, and three that show
nothing at all (a built image: the pack cannot tell they run Redis, and says the network rule's
"neither Redis nor a Redis client" of them), and MISP's Valkey started by a `sh -c` script that
picks between two `exec valkey-server` lines with `if ... else ... fi` (both are judged: the
one with no password, and the one with a 13-character password).
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from policies import strictness
from policies.analyzer import Finding, PackServer
from policies.check import evaluate
from policies.records import Record, parse_records
from tests.policy.program_render import render_program
from tests.policy.support import describe

pytestmark = pytest.mark.policy

EXTERNAL = Path(__file__).resolve().parent / "external"
PROGRAMS = sorted(EXTERNAL.glob("*.json"))
PYTHON_PROGRAMS = Path(__file__).resolve().parent / "external_programs"
PYTHON = sorted(p.stem for p in PYTHON_PROGRAMS.glob("[a-z]*.py"))


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


def python_program(name: str) -> ModuleType:
    return importlib.import_module(f"tests.policy.external_programs.{name}")


def python_expect(name: str) -> dict[str, Any]:
    path = PYTHON_PROGRAMS / f"{name}.expect.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_corpus__at_least_48_programs_half_deploying_redis_each_with_a_source() -> None:
    sources = [(p.name, program(p)["SOURCE"], program(p)["deploysRedis"]) for p in PROGRAMS]
    for name in PYTHON:
        module = python_program(name)
        sources.append((name, module.SOURCE, module.DEPLOYS_REDIS))
    assert len(sources) >= 48
    assert sum(redis for _, _, redis in sources) * 2 >= len(sources)
    for name, source, _ in sources:
        assert {"repository", "path", "language"} <= set(source), name
    for expect in [program(p)["expect"] for p in PROGRAMS] + [python_expect(n) for n in PYTHON]:
        assert expect["verdict"] in ("pass", "reject")


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program__gets_its_verdict_and_every_reason(pack: PackServer, path: Path) -> None:
    data = program(path)
    assert_judged(judge(pack, records_of(data, path.name)), data["expect"])


@pytest.mark.parametrize("name", PYTHON)
def test_python_program__run_by_the_mock_engine__gets_its_verdict_and_every_reason(
    pack: PackServer, name: str
) -> None:
    module = python_program(name)
    records = render_program(module.program, project=module.PROJECT, stack=module.STACK)
    assert_judged(judge(pack, records), python_expect(name))


def assert_judged(findings: list[Finding], expect: dict[str, Any]) -> None:
    """The verdict, exactly the expected mandatory policies, and every expected reason."""
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
