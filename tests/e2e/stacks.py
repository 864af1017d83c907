"""The stacks under test: what is expected of them, and deploying them when they are not up.

The e2e session reuses a stack that is already running and healthy (e.g. one that
scripts/setup-secure-redis.sh deployed). Otherwise it deploys it the way the setup script does
without a Pulumi engine (`python -m policies.check`, then `python -m infra.apply up`); a stack
it made from nothing it tears down at the end, checking that nothing of it remains, and one
that was there already (not healthy) it keeps.

Under pytest-xdist every worker has its own `Deployments`: two workers deploying the same stack
would remove and recreate each other's objects, so a worker never deploys; a stack that is not
running there is an error telling how to deploy it first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from inspect import cleandoc
from pathlib import Path
from typing import Any, Final

import docker
from docker.errors import NotFound

from infra.applier.state import StateStore
from infra.cli import say
from infra.naming import STACK_LABEL, object_name
from infra.pulumi_names import CONTAINER
from infra.render import RenderedResource, RenderedStack, render_stack
from infra.settings import REPO_ROOT, STACK_NAME_RULE, StackSettings, valid_stack_name
from tests.e2e.claims import Claim, Claims, Holder, Verdict, this_run, verdict

# The stacks verified when none is named. Any other stack with a Pulumi.<name>.yaml can be
# named (`--stack staging-eu`): scripts/setup-secure-redis.sh deploys it and verifies it so.
STACK_NAMES: Final = ("dev", "prod")
STACKS_ENV: Final = "SECURE_REDIS_E2E_STACKS"
KEEP_ENV: Final = "SECURE_REDIS_E2E_KEEP"
PROBE_LABEL: Final = "io.secure-redis.e2e-probe"
# Another run's stacks (tests/e2e/claims.py): waited for at most as long as a whole e2e run
# takes on CI's 2 cores with room to spare, and looked at every few seconds.
CLAIM_WAIT_S: Final = 40 * 60.0
CLAIM_POLL_S: Final = 5.0
CLAIM_REPORT_S: Final = 5 * 60.0


@dataclass(frozen=True)
class Stack:
    """One deployed stack: its settings, and its declaration (a fresh render of the program).

    The render generates new certificates and secrets every time, so only the declaration's
    structure is compared with what runs; generated values are checked by their properties.
    """

    name: str
    declared: RenderedStack = field(repr=False)

    @property
    def settings(self) -> StackSettings:
        return self.declared.settings

    def object(self, suffix: str) -> str:
        return object_name(self.name, suffix)

    @property
    def redis(self) -> str:
        return self.object("redis")

    @property
    def app(self) -> str:
        return self.object("app")

    @property
    def exporter(self) -> str:
        return self.object("redis-exporter")

    @property
    def rotation(self) -> str:
        """The data-key rotation pass: declared stopped, started by scripts/rotate.sh."""
        return self.object("rotation")

    @property
    def backend(self) -> str:
        return self.object("backend")

    @property
    def frontend(self) -> str:
        return self.object("frontend")

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.app_host_port}"

    @property
    def production(self) -> bool:
        return self.settings.environment.value == "production"

    def declared_container(self, suffix: str) -> RenderedResource:
        return self.declared.named(self.object(suffix))


# Containers that run once to completion: the material initialisers and Redis's reload jobs.
ONE_SHOT = (
    "redis-init",
    "app-init",
    "reload-init",
    "reload-tls",
    "reload-acl",
    "redis-exporter-init",
    "rotation-init",
)
# The long-running containers, by Docker name suffix.
SERVICES = ("redis", "app", "redis-exporter")
# Declared stopped (never started by an up): the data-key rotation pass.
STOPPED = ("rotation",)


def stack_selection(chosen: Sequence[str], root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The stacks to verify: those `chosen` (duplicates dropped), else STACK_NAMES.

    A chosen stack must have a stack file, as scripts/lib.sh `require_stack` asks of the setup
    script; raises ValueError naming each one that does not, and the stacks there are.
    """
    problems = []
    for name in dict.fromkeys(chosen):
        if not valid_stack_name(name):
            problems.append(f"{name!r} is not a stack name: {STACK_NAME_RULE}")
        elif not (root / f"Pulumi.{name}.yaml").is_file():
            problems.append(f"no stack {name!r}: Pulumi.{name}.yaml does not exist in {root}")
    if problems:
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise ValueError(f"{'; '.join(problems)} (stacks: {' '.join(known) or 'none'})")
    return tuple(dict.fromkeys(chosen)) or STACK_NAMES


def running(client: docker.DockerClient, stack: str) -> bool:
    """Redis, the app and the exporter run healthy, the initialisers and reload jobs
    completed, and the rotation pass is there, not running."""
    try:
        for suffix in SERVICES:
            state = client.api.inspect_container(object_name(stack, suffix))["State"]
            if not state.get("Running") or (state.get("Health") or {}).get("Status") != "healthy":
                return False
        for suffix in ONE_SHOT:
            state = client.api.inspect_container(object_name(stack, suffix))["State"]
            if state.get("Running") or state.get("ExitCode") != 0:
                return False
        for suffix in STOPPED:
            if client.api.inspect_container(object_name(stack, suffix))["State"].get("Running"):
                return False
    except NotFound:
        return False
    return True


def leftovers(client: docker.DockerClient, stack: str) -> list[str]:
    """Everything of `stack` still on the engine: labelled as its own or named like it."""
    label = {"label": f"{STACK_LABEL}={stack}"}
    prefix = object_name(stack, "")
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [
        f"container {c.name}"
        for c in client.containers.list(all=True, filters={"name": prefix})
        if c.name.startswith(prefix) and f"container {c.name}" not in found
    ]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    found += [
        f"network {n.name}"
        for n in client.networks.list(names=[prefix])
        if n.name.startswith(prefix)
    ]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    found += [
        f"volume {v.name}"
        for v in client.volumes.list()
        if v.name.startswith(prefix) and f"volume {v.name}" not in found
    ]
    found += [f"image {i.tags or i.short_id}" for i in client.images.list(filters=label)]
    found += [
        f"image {tag}" for i in client.images.list() for tag in i.tags if tag.startswith(prefix)
    ]
    return sorted(set(found))


def existed_before(client: docker.DockerClient, stack: str, root: Path = REPO_ROOT) -> bool:
    """Someone's stack: the applier's state for it, or any object of it on the engine."""
    return StateStore(root, stack).exists() or bool(leftovers(client, stack))


def _run(*argv: str) -> tuple[int, str]:
    proc = subprocess.run(  # noqa: PLW1510 - the caller checks the code
        [sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )
    return proc.returncode, proc.stdout + proc.stderr


def _down(name: str) -> tuple[int, str]:
    return _run("-m", "infra.apply", "down", "--stack", name)


def _tell(message: str) -> None:
    """Progress and decisions on stderr: `python -m tests.e2e.stacks up` prints on stdout the
    stacks it deployed, which scripts/test.sh reads."""
    print(f"e2e stacks: {message}", file=sys.stderr, flush=True)


class NotDeployed(Exception):
    """The stack is not running healthy, and this session may not deploy it."""


def not_deployed_message(name: str) -> str:
    return (
        f"stack {name} is not deployed; deploy it first with "
        f"scripts/setup-secure-redis.sh {name} or python -m infra.apply up --stack {name}, "
        "or run without -n"
    )


def _problem(step: Callable[[str], None], name: str) -> str | None:
    """What went wrong in `step(name)`, or None: a failed stack is remembered, not raised."""
    try:
        step(name)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None


class Deployments:
    """Stacks of this session: reused when running, deployed (and later removed) otherwise.

    `may_deploy=False` (a pytest-xdist worker): a stack that is not running is `NotDeployed`.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        may_deploy: bool = True,
        root: Path = REPO_ROOT,
        claims: Claims | None = None,
        wait_s: float = CLAIM_WAIT_S,
        poll_s: float = CLAIM_POLL_S,
    ) -> None:
        self.client = client
        self.may_deploy = may_deploy
        self.root = root
        self.claims = claims or Claims()
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.stacks: dict[str, Stack] = {}
        self.owned: list[str] = []
        self.claimed: list[str] = []  # the claims this session wrote: its to release
        self.failed: dict[str, str] = {}  # stack -> why prepare() could not deploy it
        self._me: Holder | None = None

    @property
    def me(self) -> Holder:
        if self._me is None:
            self._me = this_run(self.root)
        return self._me

    def _admit(self, name: str) -> str | None:
        """Take the stack's claim (claims.verdict): wait while another live run holds it,
        remove first what a run that ended left, refuse one whose state is elsewhere. The
        problem in words, or None when the stack is this run's to use."""
        waited = 0.0
        while True:
            with self.claims.locked():
                claim = self.claims.read(name)
                decided, why = verdict(
                    claim,
                    self.me,
                    running=running(self.client, name),
                    state_here=StateStore(self.root, name).exists(),
                )
                if decided is Verdict.REFUSE:
                    return f"stack {name}: {why.replace('NAME', name)}"
                if decided is not Verdict.WAIT:
                    mine = claim is not None and claim.holder == self.me
                    if not mine:
                        self.claims.write(name, Claim(self.me, deployed=False))
                        self.claimed.append(name)
            if decided is Verdict.USE:
                return None
            if decided is Verdict.REMOVE_FIRST:
                _tell(f"stack {name}: {why}; removing it first")
                problems = self._remove([name])
                if problems:
                    return "\n".join(problems)
                continue  # now from nothing: deployed, and so owned, by this run
            if waited >= self.wait_s:
                return (
                    f"stack {name}: {why}, still after {waited / 60:.0f} min; let that run end "
                    f"(or stop it: its end removes what it deployed), then run again"
                )
            if waited % CLAIM_REPORT_S < self.poll_s:
                _tell(f"stack {name}: {why}; waiting for it (at most {self.wait_s / 60:.0f} min)")
            time.sleep(self.poll_s)
            waited += self.poll_s

    def prepare(self, names: Iterable[str]) -> None:
        """Deploy every stack of `names` that is not running, side by side: a deploy mostly
        waits (image builds, health checks every 5 s, run-to-completion jobs), so two take
        little longer than one (the e2e run's setup, CI on 2 cores). A stack that fails is
        remembered, and `ensure` fails its tests, as a deploy in `ensure` would."""
        if not self.may_deploy:
            return
        wanted = []
        for name in dict.fromkeys(names):
            if name in self.stacks:
                continue
            if (problem := self._admit(name)) is not None:
                self.failed[name] = problem
            else:
                wanted.append(name)
        missing = [n for n in wanted if not running(self.client, n)]
        with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
            outcomes = dict(zip(missing, pool.map(self._deploy_quietly, missing), strict=True))
        # The firewall rules one stack after the other: each run edits the host's iptables.
        for name, deploy_problem in outcomes.items():
            problem = deploy_problem or self._firewall_quietly(name)
            if problem is not None:
                self.failed[name] = problem

    def ensure(self, name: str) -> Stack:
        if name in self.failed:
            raise RuntimeError(self.failed[name])
        if name not in self.stacks:
            if self.may_deploy and (problem := self._admit(name)) is not None:
                self.failed[name] = problem
                raise RuntimeError(problem)
            if not running(self.client, name):
                if not self.may_deploy:
                    raise NotDeployed(not_deployed_message(name))
                self._deploy(name)
                self._firewall(name)
            self.stacks[name] = Stack(name=name, declared=render_stack(name))
        return self.stacks[name]

    def _deploy_quietly(self, name: str) -> str | None:
        return _problem(self._deploy, name)

    def _firewall_quietly(self, name: str) -> str | None:
        return _problem(self._firewall, name)

    def _deploy(self, name: str) -> None:
        code, output = _run("-m", "policies.check", "--stack", name)
        if code != 0:
            raise RuntimeError(f"policy check refused stack {name} (exit {code}):\n{output}")
        # A stack that was there before the session (deployed by the setup script or by hand,
        # a container stopped or a health check failing under load) gets an up and is kept:
        # taken over, it was removed at the end with its data and every secret (stack u10,
        # docs/verification.md). Only a stack made from nothing is the session's to remove.
        if not existed_before(self.client, name, self.root):
            self.owned.append(name)  # from here on, whatever is created is ours to remove
            with self.claims.locked():  # and, if this run ends before removing it, the next's
                self.claims.write(name, Claim(self.me, deployed=True))
        code, output = _run("-m", "infra.apply", "up", "--stack", name)
        if code != 0:
            raise RuntimeError(
                f"the local applier could not deploy {name} (exit {code}):\n{output}"
            )

    def _firewall(self, name: str) -> None:
        """The stack's host firewall rules, as the setup script installs them (needs root;
        without it the firewall tests fail and say so)."""
        code, output = _run("-m", "infra.firewall", "up", "--stack", name)
        if code not in (0, 5):  # 5: not root (infra.firewall)
            raise RuntimeError(f"the firewall rules of {name} failed (exit {code}):\n{output}")

    def teardown(self) -> None:
        """Remove the stacks this session deployed; raise if anything of them remains."""
        if os.environ.get(KEEP_ENV):
            self.claimed += self.owned  # kept: anyone's to use or remove from here on
            self._release()
            return
        problems = self._remove(self.owned)
        self._release()
        if problems:
            raise AssertionError("\n".join(problems))

    def _release(self) -> None:
        for name in self.claimed:
            self.claims.release(name, self.me)
        self.claimed = []

    def _remove(self, names: Sequence[str]) -> list[str]:
        """Remove the stacks, saying what went wrong. The firewall rules one stack after the
        other (each run edits the host's iptables), then the stacks' removals side by side:
        each mostly waits for the engine (graceful stops, container and image removals) and
        touches only its own stack's objects."""
        problems = []
        for name in names:
            code, output = _run("-m", "infra.firewall", "down", "--stack", name)
            if code not in (0, 5):  # 5: not root (infra.firewall)
                problems.append(f"firewall down {name} failed (exit {code}):\n{output}")
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            downs = pool.map(_down, names)
            for name, (code, output) in zip(names, downs, strict=True):
                if code != 0:
                    problems.append(f"down {name} failed (exit {code}):\n{output}")
        for name in names:
            remaining = leftovers(self.client, name)
            if remaining:
                problems.append(f"after down, stack {name} still has: {', '.join(remaining)}")
        return problems


def inspect(client: docker.DockerClient, container: str) -> dict[str, Any]:
    return dict(client.api.inspect_container(container))


def main(argv: list[str]) -> int:
    """`python -m tests.e2e.stacks (up|down) STACK...`: what an e2e session does for the
    stacks it owns, for scripts/test.sh, which runs the e2e tests in two sessions (the checks of
    the undisturbed stacks on two workers, which never deploy, then the fault tests alone).
    `up` deploys those not running, side by side, and prints the names of those it deployed,
    one a line (only they are the caller's to remove); `down` removes them, fails on
    leftovers, and releases every stack the run held (tests/e2e/claims.py: the run is
    SECURE_REDIS_E2E_HOLDER's process)."""
    usage = "usage: python -m tests.e2e.stacks (up|down) STACK..."
    if argv[:1] in (["-h"], ["--help"]):
        say(f"{usage}   STACK: {' or '.join(STACK_NAMES)}\n\n{cleandoc(main.__doc__ or '')}")
        return 0
    if not argv or argv[0] not in ("up", "down") or set(argv[1:]) - set(STACK_NAMES):
        print(
            f"python -m tests.e2e.stacks: error: {' '.join(argv) or 'no arguments'}: expected "
            f"(up|down) STACK..., each STACK one of {', '.join(STACK_NAMES)} (see --help)",
            file=sys.stderr,
        )
        return 2
    action, names = argv[0], argv[1:]
    if action == "up" and not names:
        return 0
    deployments = Deployments(docker.from_env(timeout=300))
    if action == "up":
        deployments.prepare(names)
        for name in deployments.owned:  # none when every stack was running already
            say(name)
        for problem in deployments.failed.values():
            print(f"e2e stacks: {problem}", file=sys.stderr)
        return 1 if deployments.failed else 0
    deployments.owned = list(names)
    # The end of the run: every claim it holds goes, those of the stacks it reused too.
    deployments.claimed = deployments.claims.held_by(deployments.me)
    try:
        deployments.teardown()
    except AssertionError as exc:
        print(f"e2e stacks: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = [
    "CONTAINER",
    "KEEP_ENV",
    "PROBE_LABEL",
    "STACKS_ENV",
    "STACK_NAMES",
    "Deployments",
    "NotDeployed",
    "Stack",
    "inspect",
    "leftovers",
    "not_deployed_message",
    "running",
    "stack_selection",
]
