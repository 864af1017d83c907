"""`python -m infra.apply up|down|plan --stack S`: the local applier's command line.

    up     render the program (mock runtime), then recreate every declared Docker object
    down   remove every container, network, volume and image labelled io.secure-redis.stack=S
    plan   render and translate only; print what `up` would create (no Docker needed)

It is not Pulumi: there is no state and no diff. Exit codes: 0 done, 1 the stack could not be
applied or removed, 2 the stack or its configuration is unusable.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from infra.applier.errors import ApplyError
from infra.applier.plan import Plan, plan_stack
from infra.applier.translate import ContainerSpec, ImageSpec, NetworkSpec, VolumeSpec
from infra.mock_engine import RenderError
from infra.render import render_stack
from infra.settings import REPO_ROOT, STACK_NAME_RULE, SettingsError, valid_stack_name

if TYPE_CHECKING:
    from infra.applier.engine import LocalApplier

NOT_PULUMI: Final = (
    "local applier, not Pulumi: renders infra/ under Pulumi's mock runtime and creates the "
    "declared Docker objects with the docker SDK (no state; up recreates, down removes by label)"
)


def say(message: str) -> None:
    print(f"apply: {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.apply", description=NOT_PULUMI)
    parser.add_argument("action", choices=("up", "down", "plan"))
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    args = parser.parse_args(argv)
    if not valid_stack_name(args.stack):
        print(
            f"apply: error: {args.stack!r} is not a stack name: {STACK_NAME_RULE}", file=sys.stderr
        )
        return 2
    start = time.monotonic()
    if args.action == "down":
        say(
            f"stack {args.stack}: local applier, not Pulumi: removing every object labelled "
            f"io.secure-redis.stack={args.stack}"
        )
    else:
        say(f"stack {args.stack}: {NOT_PULUMI}")
    changing = False  # whether the engine may have been changed when an error comes
    try:
        if args.action == "down":
            _applier().down(args.stack)
        else:
            plan = _plan(args.stack)
            if args.action == "plan":
                _print_plan(plan)
            else:
                applier = _applier()
                changing = True
                created = applier.up(plan)
                say(f"stack {args.stack} is up: {created.describe()}")
    except (SettingsError, RenderError) as exc:
        print(f"apply: error: stack {args.stack}: {exc}", file=sys.stderr)
        return 2
    except ApplyError as exc:
        print(f"apply: error: {exc}", file=sys.stderr)
        if changing:
            print(
                "apply: objects created before the failure remain; remove them with "
                f"`python -m infra.apply down --stack {args.stack}`",
                file=sys.stderr,
            )
        return 1
    say(f"{args.action} finished in {time.monotonic() - start:.1f}s")
    return 0


def _plan(stack: str) -> Plan:
    rendered = render_stack(stack)
    plan = plan_stack(stack, rendered.resources, root=REPO_ROOT)
    say(
        f"rendered {len(rendered.resources)} resources; {len(plan.steps)} Docker objects to create "
        f"({len(plan.skipped)} need none: components, certificates and secrets made by the render)"
    )
    return plan


def _applier() -> LocalApplier:
    import docker  # noqa: PLC0415 - `plan` must work without a Docker engine
    from docker.errors import DockerException  # noqa: PLC0415

    from infra.applier.engine import LocalApplier  # noqa: PLC0415

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as exc:
        raise ApplyError(
            f"the Docker engine is not reachable ({exc}); run scripts/bootstrap.sh to start it"
        ) from exc
    return LocalApplier(client, say=say)


def _print_plan(plan: Plan) -> None:
    for step in plan.steps:
        spec = step.spec
        if isinstance(spec, ImageSpec):
            say(f"  build image {spec.tag} ({spec.build_kwargs['dockerfile']})")
        elif isinstance(spec, NetworkSpec):
            internal = " internal" if spec.kwargs["internal"] else ""
            say(f"  network {spec.name} ({spec.kwargs['driver']}{internal})")
        elif isinstance(spec, VolumeSpec):
            say(f"  volume {spec.name}")
        elif isinstance(spec, ContainerSpec):
            nets = ", ".join(e.network for e in spec.endpoints) or spec.host_config["network_mode"]
            extra = f", {len(spec.uploads)} uploads" if spec.uploads else ""
            mode = " (run to completion)" if spec.lifecycle.attach else ""
            say(f"  container {spec.name} on {nets}{extra}{mode}")


if __name__ == "__main__":
    sys.exit(main())
