"""End-to-end session: real Docker, deployed stacks, testinfra (`docker://`, `local://`).

Stacks under test: `pytest tests/e2e --stack dev` (repeatable) or SECURE_REDIS_E2E_STACKS=dev,prod;
default both. A stack that is already running healthy is verified as it is; one that is not is
deployed with the policy check and the local applier, and removed at the end of the session
(keep it with SECURE_REDIS_E2E_KEEP=1). Under pytest-xdist (`-n`) nothing is deployed: each
worker would deploy the same stack and destroy the other's objects, so a stack that is not
running there fails its tests with how to deploy it first. Each test module declares which
point of the security model it verifies (`pytest.mark.security("transport")`);
`--e2e-summary FILE` writes the pass/fail table that scripts/setup-secure-redis.sh prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import docker
import pytest
from docker.errors import DockerException

from infra.settings import REPO_ROOT
from tests.e2e.hosts import container_host
from tests.e2e.probes import ProbeContainer, consumer_probe, probe_record, record_probes
from tests.e2e.stacks import (
    STACK_NAMES,
    STACKS_ENV,
    Deployments,
    NotDeployed,
    Stack,
    stack_selection,
)

AREAS: Final = {
    "transport": "1 transport: TLS only, client certificates, protocol versions",
    "identity": "2 identity: ACL users, default user off, least privilege",
    "network": "3 network: internal backend, no Redis port on the host",
    "runtime": "4 runtime: non-root, read-only, no capabilities, limits, health",
    "data": "5 data: values encrypted at rest, secrets only in files",
    "failure": "6 failure: memory fallback, restarts, key rotation, isolation",
    "operations": "6 operations: certificates, CA, passwords, data keys rotated in place",
    "deployment": "deployment: applied objects match the declaration; teardown",
}
_AREA: Final = "security_area"
XDIST_WORKER_ENV: Final = "PYTEST_XDIST_WORKER"
_RESULTS: list[dict[str, str]] = []
# The fixtures through which a test uses the deployed stacks (`stack` and every fixture built
# on it takes `stack_name`); a test that takes none of them is `stackless`.
_DEPLOYED: Final = frozenset({"stack_name", "first_stack", "both_stacks", "deployments"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("secure-redis e2e")
    group.addoption(
        "--stack",
        action="append",
        dest="e2e_stacks",
        help=f"stack to verify, any with a Pulumi.<stack>.yaml (repeatable; default: "
        f"${STACKS_ENV} or dev and prod)",
    )
    group.addoption(
        "--e2e-summary",
        dest="e2e_summary",
        metavar="FILE",
        help="write the per-security-area pass/fail summary as JSON to FILE",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "security(area): the point of the security model a test verifies"
    )
    config.addinivalue_line(
        "markers", "fault: disruptive fault tests (stop/restart Redis, rotate keys, two stacks)"
    )
    config.addinivalue_line(
        "markers",
        "rotation_load: every rotation under minutes of live load (opt-in: -m rotation_load)",
    )
    config.addinivalue_line(
        "markers",
        "walk: a randomized day-2 walk under load (opt-in: -m walk; tests/e2e/walk.py)",
    )
    config.addinivalue_line(
        "markers",
        "rotate_all: a whole `rotate.sh S all` (eleven ups, 93 s on prod) where a test of one "
        "kind already covers the step it checks (opt-in: -m rotate_all)",
    )
    config.addinivalue_line(
        "markers",
        "one_stack(why): on the first selected stack only, because no per-stack setting "
        "(infra/profiles.py: memory, CPUs, validity, TLS, key algorithm) changes what it "
        "verifies; `why` says so for the test",
    )
    config.addinivalue_line(
        "markers",
        "cross_stack: uses dev and prod side by side (given to every test that takes "
        "`both_stacks`, so a run can select the tests of one stack alone: scripts/test.sh)",
    )
    config.addinivalue_line(
        "markers",
        "stackless: uses no deployed stack (given to every test that takes none of `stack`, "
        "`first_stack`, `both_stacks`: throwaway stacks, images, scripts' refusals), so "
        "scripts/test.sh runs them beside the fault tests of the deployed stacks",
    )
    # A stack that cannot be verified stops the run here, with one line; found while
    # parametrizing, it failed every test file's collection, each with a traceback.
    selected_stacks(config)


def selected_stacks(config: pytest.Config) -> tuple[str, ...]:
    chosen = config.getoption("e2e_stacks", default=None) or [
        s.strip() for s in os.environ.get(STACKS_ENV, "").split(",") if s.strip()
    ]
    try:
        return stack_selection(chosen)
    except ValueError as exc:
        raise pytest.UsageError(f"--stack / {STACKS_ENV}: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that uses `stack` runs on every selected stack; one marked `one_stack` on
    the first only (dev unless --stack says otherwise)."""
    if "stack_name" in metafunc.fixturenames:
        stacks = selected_stacks(metafunc.config)
        if metafunc.definition.get_closest_marker("one_stack"):
            stacks = stacks[:1]
        metafunc.parametrize("stack_name", stacks, scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Disruptive fault tests last, after every check of the undisturbed stacks; each test's
    security area recorded for the summary. The minutes-long rotation load, the walk and the
    whole `rotate.sh all` runs (`rotate_all`) run only when asked for by name (`-m
    rotation_load`, `-m walk`, `-m rotate_all`), never as part of `-m e2e`."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.get_closest_marker("fault") is not None)
    markexpr = config.getoption("markexpr", "") or ""
    opted_in = "rotation_load" in markexpr
    walking = re.search(r"\bwalk\b", markexpr) is not None
    rotating_all = "rotate_all" in markexpr
    for item in items:
        if here not in item.path.parents:
            continue  # this hook sees every layer's items; only e2e ones are ours
        fixtures = set(getattr(item, "fixturenames", ()))
        if "both_stacks" in fixtures:
            item.add_marker(pytest.mark.cross_stack)
        if not fixtures & _DEPLOYED:
            item.add_marker(pytest.mark.stackless)
        if item.get_closest_marker("rotation_load") and not opted_in:
            item.add_marker(pytest.mark.skip(reason="opt-in: run with -m rotation_load"))
        if item.get_closest_marker("walk") and not walking:
            item.add_marker(pytest.mark.skip(reason="opt-in: run with -m walk"))
        if item.get_closest_marker("rotate_all") and not rotating_all:
            item.add_marker(pytest.mark.skip(reason="opt-in: run with -m rotate_all"))
        marker = item.get_closest_marker("security")
        item.user_properties.append((_AREA, str(marker.args[0]) if marker else "other"))


# -- the summary table -----------------------------------------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect outcomes per area (on the controller too when tests run under pytest-xdist:
    the area travels in the report's user_properties)."""
    properties = dict(report.user_properties)
    if _AREA not in properties:
        return  # not an e2e test
    area = str(properties[_AREA])
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _RESULTS.append({"area": area, "test": report.nodeid, "outcome": report.outcome})


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("e2e_summary", default=None)
    if not target:
        return
    rows = []
    for area, title in {**AREAS, "other": "other"}.items():
        results = [r for r in _RESULTS if r["area"] == area]
        if not results:
            continue
        failed = [r["test"] for r in results if r["outcome"] == "failed"]
        passed = sum(r["outcome"] == "passed" for r in results)
        rows.append(
            {
                "area": area,
                "title": title,
                "passed": passed,
                "failed": len(failed),
                "skipped": len(results) - passed - len(failed),
                "failures": failed,
            }
        )
    Path(target).write_text(json.dumps({"areas": rows}, indent=2))


# -- Docker, stacks, probes ------------------------------------------------------------------


@pytest.fixture(scope="session")
def probe_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory recording the probes this run creates (tests/e2e/probes.py)."""
    return probe_record(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def docker_client(probe_ids: Path) -> Iterator[docker.DockerClient]:
    if shutil.which("docker") is None:
        pytest.skip(
            "the docker CLI is not installed (testinfra's docker backend needs it); "
            "run scripts/bootstrap.sh"
        )
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as exc:
        pytest.skip(f"the Docker engine is not reachable ({exc}); run scripts/bootstrap.sh")
    record_probes(client, probe_ids)
    yield client
    client.close()


def stacks_needed(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The stacks the selected tests use: through `stack` (its parameter), `first_stack` or
    `both_stacks`."""
    selected = selected_stacks(config)
    needed: list[str] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        names = getattr(item, "fixturenames", ())
        if callspec is not None and "stack_name" in callspec.params:
            needed.append(str(callspec.params["stack_name"]))
        if "first_stack" in names:
            needed.append(selected[0])
        if "both_stacks" in names and set(selected) == set(STACK_NAMES):
            needed += STACK_NAMES
    return list(dict.fromkeys(needed))


@pytest.fixture(scope="session")
def deployments(
    request: pytest.FixtureRequest, docker_client: docker.DockerClient
) -> Iterator[Deployments]:
    """Only a session without xdist workers deploys (and so owns and removes) stacks: all
    that its tests need, at once and side by side (stacks.Deployments.prepare)."""
    deployed = Deployments(docker_client, may_deploy=not os.environ.get(XDIST_WORKER_ENV))
    try:
        deployed.prepare(stacks_needed(request.config, request.session.items))
        yield deployed
    finally:
        deployed.teardown()


def ensure(deployments: Deployments, name: str) -> Stack:
    """The stack, or (under xdist, when it is not running) a setup failure saying how to
    deploy it first."""
    try:
        return deployments.ensure(name)
    except NotDeployed as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def stack(stack_name: str, deployments: Deployments) -> Stack:
    return ensure(deployments, stack_name)


@pytest.fixture(scope="session")
def first_stack(request: pytest.FixtureRequest, deployments: Deployments) -> Stack:
    """The first selected stack (dev unless --stack says otherwise), for tests of a script's
    own behaviour that no stack setting changes (scripts/rotate.sh's Pulumi CLI path): run on
    every stack they cost the e2e run minutes and showed nothing new."""
    return ensure(deployments, selected_stacks(request.config)[0])


@pytest.fixture(scope="session")
def stack_files_restored(deployments: Deployments) -> Iterator[None]:
    """scripts/rotate.sh raises generations in Pulumi.<stack>.yaml. They stay raised for the
    whole session, because the rotations of several modules build on each other on the one
    deployed stack (lowering one would make the next `up` rotate again, or refuse a lower
    data-key generation). At the end the working tree gets back the files of the stacks this
    session deployed (it removes them). A stack it did not deploy keeps running with the raised
    generations, so its file keeps them too: lowered, the next `up` of it would renew the
    certificates, rotate the passwords and the API token again unasked, or refuse the lower
    data-key generation (scripts/test.sh runs the e2e tests in two sessions on stacks deployed
    before either, and restores the files after removing the stacks)."""
    files = {p: p.read_text() for p in REPO_ROOT.glob("Pulumi.*.yaml")}
    yield
    for name in deployments.owned:
        path = REPO_ROOT / f"Pulumi.{name}.yaml"
        if path in files:
            path.write_text(files[path])


@pytest.fixture(scope="session")
def both_stacks(request: pytest.FixtureRequest, deployments: Deployments) -> tuple[Stack, Stack]:
    if set(selected_stacks(request.config)) != set(STACK_NAMES):
        pytest.skip("needs dev and prod side by side; run without --stack to select both")
    return ensure(deployments, "dev"), ensure(deployments, "prod")


@pytest.fixture(scope="session")
def probe(stack: Stack, docker_client: docker.DockerClient) -> Iterator[ProbeContainer]:
    """A client on the stack's backend network with the app's material (read-only)."""
    with consumer_probe(docker_client, stack, "app", purpose=f"{stack.name}-backend") as probe:
        yield probe


@pytest.fixture(scope="session")
def rotation_probe(stack: Stack, docker_client: docker.DockerClient) -> Iterator[ProbeContainer]:
    """A client on the stack's backend network as the rotation pass (its image and uid, its
    material read-only): the one identity that may list the app's names (SCAN)."""
    purpose = f"{stack.name}-rotation"
    with consumer_probe(docker_client, stack, "rotation", purpose=purpose) as probe:
        yield probe


@pytest.fixture(scope="session")
def redis_host(stack: Stack) -> Any:
    return container_host(stack.redis)


@pytest.fixture(scope="session")
def app_host(stack: Stack) -> Any:
    return container_host(stack.app)
