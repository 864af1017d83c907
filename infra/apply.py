"""`python -m infra.apply (plan|up|down|status) --stack S`: the local applier's command line.

    plan    render the program against the stack's state; print, per resource, what `up` would
            do (create / update / replace / delete / same) and why (changed property paths,
            never values), like `pulumi preview --diff`, with what the engine shows changed
            behind the applier's back (infra/applier/drift.py) and what would stop the up,
            decided by the up's own code; it only reads the engine (engine.py `reading_only`).
            Without a reachable engine, the state's view alone, and a line saying so.
    up      the same, then apply it: dynamic resources (certificates, passwords, data keys) go
            through their provider's check -> diff -> update/create against their previous
            outputs, so unchanged material is kept; Docker objects whose declaration changed are
            replaced, the rest are not touched; volumes are never removed; the state is saved
            after every step
    down    remove every container, network, volume and image labelled io.secure-redis.stack=S,
            and the stack's state
    status  each certificate's serial and days to expiry, and the data-key generation, from
            the state; then what the next up would change on the engine, as `plan` reads it

It is not Pulumi. The state is `.secure-redis/state/S.state`, AES-256-GCM encrypted
(infra/applier/state.py: key from SECURE_REDIS_STATE_PASSPHRASE via scrypt, or a 0600 key
file). Exit codes (README, "Exit codes"): 0 done, 2 the stack, its configuration or its state
is unusable, or an image's build context lacks a file made on the host (the app's wheelhouse)
(nothing was deployed), 3 the stack could not be applied or removed on the engine, an up
would retire the CA Redis still serves from (its promote's TLS reload did not take; nothing was
changed), or the command was interrupted (Ctrl-C, SIGTERM) (operational; the message says what
remains).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

EXIT_INTERRUPTED: Final = 3
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# A signal the process was started with ignored stays ignored, as CPython leaves an ignored
# SIGINT alone: a shell starts `cmd &` with SIGINT ignored, so a Ctrl-C meant for the
# foreground job must not end a background `up` (it did: the handlers below replaced it).
_INHERITED_IGNORED: Final = frozenset(s for s in _SIGNALS if signal.getsignal(s) is signal.SIG_IGN)

# What signal.signal takes and returns (typeshed's _HANDLER).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _handle(handler: _Handler) -> dict[int, _Handler]:
    """Install `handler` for SIGINT and SIGTERM, except one inherited ignored; returns the
    handlers it replaced (for signal.signal)."""
    return {s: signal.signal(s, handler) for s in _SIGNALS if s not in _INHERITED_IGNORED}


def _interrupted_while_starting(_signum: int, _frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM while the modules below load (pulumi, the docker SDK: 1-12 s on the
    2-core build machine under load): nothing has been read or changed, and a KeyboardInterrupt
    there printed the import's traceback. One line, and out."""
    os.write(2, b"apply: error: interrupted while starting; nothing was read or changed\n")
    os._exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    _handle(_interrupted_while_starting)

import datetime as dt  # noqa: E402 - after the handler above: these take seconds to load
import time  # noqa: E402
from collections.abc import Collection, Iterator, Mapping, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from infra.applier.diff import docker_changes, summary  # noqa: E402
from infra.applier.diff import unfinished as left_unfinished  # noqa: E402
from infra.applier.drift import Drift  # noqa: E402
from infra.applier.errors import (  # noqa: E402
    ApplyError,
    BuildInputError,
    HostConflict,
    NothingChanged,
    ReloadNotTaken,
)
from infra.applier.plan import Plan, Spec, Step, plan_stack  # noqa: E402
from infra.applier.state import (  # noqa: E402
    MIN_PASSPHRASE_CHARS,
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    ResourceState,
    StackState,
    StateError,
    StateStore,
)
from infra.applier.status import (  # noqa: E402
    CA_TYPE,
    material_lines,
    retired_data_keys_line,
    unfinished_rotation,
)
from infra.applier.translate import (  # noqa: E402
    ContainerSpec,
    ImageSpec,
    NetworkSpec,
    VolumeSpec,
)
from infra.changes import Change, Op  # noqa: E402
from infra.cli import OneLineParser, project_dir  # noqa: E402
from infra.cli import say as cli_say  # noqa: E402
from infra.engine_report import live_restore_line  # noqa: E402
from infra.images import BuildContextChanging, build_input_problem, shown_context  # noqa: E402
from infra.mock_engine import Prior, RenderError  # noqa: E402
from infra.naming import Role, object_name  # noqa: E402
from infra.pulumi_names import PYTHON_DYNAMIC_PREFIX as DYNAMIC_PREFIX  # noqa: E402
from infra.render import RenderedStack, render_stack  # noqa: E402
from infra.settings import (  # noqa: E402
    REPO_ROOT,
    STACK_NAME_RULE,
    SettingsError,
    quoted,
    valid_stack_name,
)

if TYPE_CHECKING:
    from infra.applier.engine import LocalApplier

NOT_PULUMI: Final = (
    "local applier, not Pulumi: renders infra/ under Pulumi's mock runtime, diffs it against "
    "the stack's encrypted state and applies only what changed with the docker SDK"
)


def say(message: str) -> None:
    """One `apply:` line; a reader that goes away stops the output, never an up or down
    halfway (infra.cli.say)."""
    cli_say(f"apply: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    # From here on Ctrl-C and SIGTERM (unless inherited ignored) raise KeyboardInterrupt
    # (SIGTERM: `timeout`, a CI runner, systemd), which ends every action with one line and
    # EXIT_INTERRUPTED, after the state was saved for every step and every object created.
    _handle(_interrupted)
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        # Before the arguments were read (a few milliseconds): nothing was read or changed.
        print("apply: error: interrupted; nothing was read or changed", file=sys.stderr)
        code = EXIT_INTERRUPTED
    _finished()  # the exit code is decided; the interpreter's shutdown is left
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = OneLineParser(
        prog="python -m infra.apply",
        description=NOT_PULUMI,
        epilog="Exit: 0 done; 2 bad stack, settings or state, or a build input missing (nothing "
        "deployed); 3 the deploy "
        "failed on the engine or was interrupted (run up again to finish it). The state is "
        "encrypted with SECURE_REDIS_STATE_PASSPHRASE when set, else with the key file "
        "state.key beside it.",
    )
    parser.add_argument(
        "action",
        choices=("up", "down", "plan", "status", "rekey"),
        help="plan: what up would do, against the stack's state and what the engine shows "
        "changed since (it only reads the engine; without one, the state's view alone); up: "
        "apply only what changed; status: certificates' serials and days to expiry, the "
        "data-key generation, what the next up would change on the engine (read as plan reads "
        "it); "
        "down: remove every object of the stack, and its state; rekey: seal the state again "
        f"with the passphrase in {NEW_PASSPHRASE_ENV} (at least {MIN_PASSPHRASE_CHARS} "
        "characters; no Docker)",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--project-dir",
        type=project_dir,
        default=REPO_ROOT,
        help="where Pulumi.<stack>.yaml and .secure-redis/state/ are (default: the repository)",
    )
    args = parser.parse_args(argv)
    if (refused := _unknown_stack(args.action, args.stack, args.project_dir)) is not None:
        print(f"apply: error: {refused}", file=sys.stderr)
        return 2
    stack, store = args.stack, StateStore(args.project_dir, args.stack)
    start = time.monotonic()
    if args.action not in ("down", "status", "rekey"):  # down says so once it knows of a stack
        say(f"stack {stack}: {NOT_PULUMI}")
    try:
        if args.action in ("status", "rekey"):  # neither changes the engine (status reads it)
            return _status(store, args.project_dir) if args.action == "status" else _rekey(store)
        _act(args.action, stack, args.project_dir, store)
    except (
        StateError,
        BuildInputError,
        SettingsError,
        RenderError,
        BuildContextChanging,
        HostConflict,
        ReloadNotTaken,
    ) as exc:
        where = "" if isinstance(exc, StateError | BuildInputError) else f"stack {stack}: "
        print(f"apply: error: {where}{exc}", file=sys.stderr)
        # An earlier step that did not take is operational (README, Exit codes); the rest is
        # a stack, settings or state that cannot be used.
        return 3 if isinstance(exc, ReloadNotTaken) else 2
    except KeyboardInterrupt:
        if args.action in ("plan", "status"):
            print(
                f"apply: error: {args.action} of stack {stack} interrupted; it only reads, "
                "nothing was changed",
                file=sys.stderr,
            )
        elif args.action == "rekey":
            # "Run it again to finish" would be wrong: once the file was replaced, the old
            # passphrase no longer opens it, and a second rekey with it is refused.
            print(
                f"apply: error: rekey of stack {stack} interrupted; the state file is replaced "
                "in one step, so it is sealed with the old passphrase or the new one, never "
                f"neither: `python -m infra.apply status --stack {stack}` with the new one in "
                f"{PASSPHRASE_ENV} tells whether it took (if not, run rekey again)",
                file=sys.stderr,
            )
        else:
            print(
                f"apply: error: {args.action} of stack {stack} interrupted; the state records "
                "every step finished and every object created so far (volumes and their "
                f"data are kept): run `python -m infra.apply {args.action} --stack {stack}` "
                "again to finish",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    except Exception as exc:  # an ApplyError, or a failure nothing below expected
        _failed(args.action, stack, store, exc)
        return 3
    _finished()
    say(f"{args.action} finished in {time.monotonic() - start:.1f}s")
    return 0


def _failed(action: str, stack: str, store: StateStore, exc: Exception) -> None:
    """Exit 3's lines. An ApplyError names the object (a step's failure of any kind is one:
    engine.py `_engine_errors`), then what the state holds and the way on. Any other failure
    (outside the steps: the state's disk, the render's machinery) gets one line naming its
    type only (its text could carry a value), never a traceback."""
    if isinstance(exc, ApplyError):
        print(f"apply: error: {exc}", file=sys.stderr)
        # A refusal before the first change says so itself (engine.py `_before_any_change`).
        if action == "up" and store.exists() and not isinstance(exc, NothingChanged):
            print(
                "apply: the state records what was applied before the failure; fix the cause "
                f"and run up again, or remove the stack with `python -m infra.apply down "
                f"--stack {stack}`",
                file=sys.stderr,
            )
        return
    what = f"{action} of stack {stack} failed with {type(exc).__name__}, an error the applier "
    if action in ("plan", "status"):
        way_on = "it only reads, nothing was changed"
    else:
        way_on = (
            "the state records every step finished before it: fix the cause and run "
            f"`python -m infra.apply {action} --stack {stack}` again to finish"
        )
    print(f"apply: error: {what}does not handle (a bug: report it); {way_on}", file=sys.stderr)


def _unknown_stack(action: str, stack: str, project_dir: Path) -> str | None:
    """Why `stack` is not one to act on, or None; checked before anything is read or made (an
    up took the stack's lock, a file under .secure-redis/, before it found a mistyped stack
    undeclared, and left the file behind). `down` needs no stack file: it removes what is
    labelled with the name (a stack whose file was deleted first); `_nothing_to_down` decides
    for it once the engine can be asked."""
    if not valid_stack_name(stack):
        return f"{quoted(stack)} is not a stack name: {STACK_NAME_RULE}"
    if action == "down" or _declared(stack, project_dir):
        return None
    return f"{_no_stack_file(stack, project_dir)}; nothing was read or changed"


def _declared(stack: str, project_dir: Path) -> bool:
    return (project_dir / f"Pulumi.{stack}.yaml").is_file()


def _no_stack_file(stack: str, project_dir: Path) -> str:
    name = f"Pulumi.{stack}.yaml"
    if (project_dir / name).exists():
        # A FIFO or a directory was "does not exist (stacks there: <this one>)".
        return (
            f"no stack {stack!r}: {name} in {project_dir} is not a regular file (a pipe, "
            "device or directory); replace it with the stack's YAML file"
        )
    stacks = ", ".join(sorted(p.name[7:-5] for p in project_dir.glob("Pulumi.*.yaml")))
    return (
        f"no stack {stack!r}: Pulumi.{stack}.yaml does not exist in {project_dir} (stacks "
        f"there: {stacks or 'none'})"
    )


def _nothing_to_down(
    stack: str, project_dir: Path, store: StateStore, applier: LocalApplier
) -> str | None:
    """Why `down` has nothing to do before taking the stack's lock, or None. A name with no
    stack file, no state and nothing on the engine labelled with it is a mistyped one (or a
    stack already removed): `down` says so, names the stacks there are and ends at exit 0,
    as a second `down` of a removed stack does (scripts/teardown.sh is safe to run again),
    without the lock file it left under .secure-redis/state/ before. A stack whose file was
    deleted but whose state or Docker objects remain is still removed."""
    if _declared(stack, project_dir) or store.exists() or not applier.find(stack).empty():
        return None
    return (
        f"{_no_stack_file(stack, project_dir)}, no state at {store.path} and nothing on the "
        f"engine labelled io.secure-redis.stack={stack}: nothing to remove (a mistyped name?)"
    )


def _act(action: str, stack: str, project_dir: Path, store: StateStore) -> None:
    """down, plan or up; raises what `main` turns into a message and an exit code."""
    if action == "down":
        applier = _applier()
        if (nothing := _nothing_to_down(stack, project_dir, store, applier)) is not None:
            say(nothing)
            return
        say(
            f"stack {stack}: local applier, not Pulumi: removing every object labelled "
            f"io.secure-redis.stack={stack}, and its state"
        )
        with store.locked("down"):
            applier.down(stack, recorded=_state_for_down(store))
            if store.remove():
                say(f"removed the state {store.path}")
    elif action == "plan":
        _plan_or_up(action, stack, project_dir, store)
    else:
        with store.locked("up"):
            _plan_or_up(action, stack, project_dir, store)


def _state_for_down(store: StateStore) -> StackState | None:
    """The state, for the containers' declared grace periods; `down` removes the stack all
    the same without it (lost key, wrong passphrase), and says what that costs."""
    try:
        return store.load()
    except StateError as exc:
        say(
            f"the state cannot be read ({exc}); removing the stack without it: containers "
            "declaring destroyGraceSeconds (the app) are not stopped gracefully first"
        )
        return None


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _finished() -> None:
    """The action is complete: what is left is its report (a few lines; for an up, the
    engine's live-restore) and the interpreter's shutdown. A Ctrl-C or SIGTERM now is not
    acted on: raised while the last line printed, it said "interrupted; run up again" and
    exit 3 for an up that was done. Ignored, not handled by a Python function: the
    interpreter's shutdown puts the default action back for a signal a Python function
    handles, and a SIGTERM then ended a finished up with 143 (20 of 20 plans sent SIGTERM
    in a loop after "plan finished"; tests/unit/test_applier_interrupt.py)."""
    _handle(signal.SIG_IGN)


def _plan_or_up(action: str, stack: str, project_dir: Path, store: StateStore) -> None:
    """Raises StateError, ApplyError and the render's errors; every check that can refuse
    (state, settings, render, translation, build inputs, missing state) runs before the first
    change."""
    state = store.load()
    _warn_weak_passphrase(store)
    rendered = _render(stack, project_dir, state)
    plan = plan_stack(stack, rendered.resources, root=project_dir)
    if action == "plan":
        _plan(rendered, plan, state, store)
        return
    _require_build_inputs(plan, stack)
    applier = _applier()
    for refusal in _refusals(plan, state, store, applier):
        raise refusal
    if (refused := _retire_refusal(rendered, state, applier)) is not None:
        raise ReloadNotTaken(refused)
    previous = state or StackState(stack)
    changes = _engine_changes(rendered, plan, state, applier)
    _print_changes(changes, plan, full=False)
    new_state = _with_dynamic(previous, rendered)
    store.save(new_state)
    applied = applier.up(plan, new_state, changes=changes, checkpoint=store.save)
    _finished()
    say(f"stack {stack} is up: {_summary(changes, plan, done=True, kept=set(applied.kept))}")
    if (unfinished := unfinished_rotation(new_state)) is not None:
        say(unfinished)
    if (retired := retired_data_keys_line(previous, new_state)) is not None:
        say(f"note: {retired}")
    for line in applier.strangers(plan, new_state):
        say(f"warning: {line}")
    if (engine := _live_restore_warning(applier)) is not None:
        say(engine)


def _plan(rendered: RenderedStack, plan: Plan, state: StackState | None, store: StateStore) -> None:
    """What the next up would do: the same decisions as `up` (`_engine_changes`, `_refusals`,
    the engine's own refusals and its strangers warning), through a client that refuses any
    request that could change the engine (engine.py `reading_only`). Without an engine, the
    state's view alone, and a line that says what it cannot show."""
    stack = plan.stack
    try:
        applier = _applier(read_only=True)
    except ApplyError as exc:
        # What an interrupted up left unfinished, the state says; drift only the engine shows.
        left = left_unfinished(plan, state.resources) if state else frozenset()
        _print_changes(_all_changes(rendered, plan, state, left), plan, full=True)
        say(
            f"note: {exc}. This plan is the state's alone: what was changed on the engine since "
            "the last up (limits, networks, names, image tags, material files: "
            "docs/day2.md lists them under Changes made behind the applier's back) is not "
            "checked, and up replaces or updates what it finds"
        )
        stops: list[str] = []
    else:
        changes = _engine_changes(rendered, plan, state, applier)
        _print_changes(changes, plan, full=True)
        stops = [str(r) for r in _refusals(plan, state, store, applier)]
        try:
            applier.refuse_before_change(plan, state or StackState(stack), changes)
        except NothingChanged as exc:
            stops.append(exc.reason)
        for line in applier.strangers(plan, state):
            say(f"warning: {line} (up names it too and leaves it there: not the stack's)")
        if (note := _retire_note(rendered, state, applier)) is not None:
            say(note)
    try:
        _require_build_inputs(plan, stack)
    except BuildInputError as exc:
        # A stale wheelhouse shows no change above (the image's tag is the wheels'): the
        # plan says what `up` will say instead of "N unchanged" alone.
        stops.insert(0, str(exc))
    for why in stops:
        say(f"note: up would stop here: {why}")


def _refusals(
    plan: Plan, state: StackState | None, store: StateStore, applier: LocalApplier
) -> Iterator[Exception]:
    """The refusals of an up before its first change that only read the engine, in the up's
    order: the up raises the first, a plan names each."""
    stack = plan.stack
    if state is None and not applier.find(stack).empty():
        # No adopt: the state holds the private keys, passwords and data keys the running
        # containers use, which exist only inside their volumes; rebuilding it from there would
        # trust whatever those volumes hold. The two ways on say what each costs.
        yield StateError(
            f"stack {stack} has Docker objects but no state at {store.path} (deployed by an "
            f"older applier or from another checkout); nothing was changed. Either copy the state "
            f"file from the checkout that deployed it to {store.path}, with its key file "
            f"{store.key_file.name} (or the same {PASSPHRASE_ENV}), and run up again; or run "
            f"`python -m infra.apply down --stack {stack}`, then up: that removes the stack's "
            "containers, networks and volumes, so its cached data is lost, and every "
            "certificate, password, data key and the API token is made anew (clients must take "
            "the new CA bundle and API token)"
        )
    if problems := applier.host_conflicts(plan):
        yield HostConflict("; and ".join(problems) + "; nothing was changed")


def _engine_changes(
    rendered: RenderedStack, plan: Plan, state: StackState | None, applier: LocalApplier
) -> list[Change]:
    """What the next up does, from the state and the engine: objects the engine no longer
    has (engine.py `missing`) and containers and image tags changed on it since the last up
    (`drifted`, infra/applier/drift.py). The one decision `plan` prints and `up` prints and
    applies."""
    previous = state or StackState(plan.stack)
    missing = applier.missing(plan, previous)
    return _all_changes(rendered, plan, state, missing, applier.drifted(plan, previous, missing))


def _retire_refusal(
    rendered: RenderedStack, state: StackState | None, applier: LocalApplier
) -> str | None:
    """Why this up must not retire a CA now, or None (infra/rotation_probe.py
    `retire_refusal` decides, for scripts/rotate.sh too). Asked only of an up whose trust
    bundle drops a CA the state's holds (the retire step) while Redis runs: a Redis that does
    not run reads its volume's files when it starts."""
    from infra import rotation_probe  # noqa: PLC0415 - `plan` needs no engine

    staying = _retire_asks(rendered, state, applier)
    if staying is None:
        return None
    stack = rendered.stack
    try:
        # This up's own state, read under its lock: the containers the last up made (an up
        # that replaced the app recorded its successor), so the probe need not read it again.
        found = rotation_probe.Recorded.of(state, stack)
        probe = rotation_probe.Probe(stack, rendered.settings.redis_port, recorded=found)
        issuer = probe.served_issuer(found.images[Role.APP])
    except rotation_probe.NotTrusted as exc:
        return str(exc)  # the container found is not the stack's: the line says what to do
    except rotation_probe.ProbeError as exc:
        return rotation_probe.unobserved_refusal(stack, str(exc))
    return rotation_probe.retire_refusal(stack, issuer, staying)


def _retire_note(
    rendered: RenderedStack, state: StackState | None, applier: LocalApplier
) -> str | None:
    """The line of `plan` and `status` (the one function both print it with) for an up that
    will ask Redis what it serves before a CA retire (`_retire_asks`), else None: the
    question runs commands in the app's and Redis's containers (rotation_probe.Probe, with a
    Docker client of its own), which is no read of the engine, so neither asks it. `status`
    did not say it until 2026-12-03."""
    if (staying := _retire_asks(rendered, state, applier)) is None:
        return None
    return (
        f"note: up asks Redis first which CA's certificate it serves: this up retires a CA "
        f"(the trust bundle keeps CA {', '.join(staying)}), and it stops, changing nothing, "
        "when Redis serves one of a CA it drops (the promote's TLS reload did not take). plan "
        "and status do not ask: that runs commands inside the app's and Redis's containers, "
        "and they only read the engine; `python -m infra.rotation_probe snapshot --stack "
        f"{rendered.stack} --applier-state` shows it (served_issuer)"
    )


def _retire_asks(
    rendered: RenderedStack, state: StackState | None, applier: LocalApplier
) -> list[str] | None:
    """The serials of the CAs the trust bundle keeps when this up asks Redis which CA's
    certificate it serves before its first change (`_retire_refusal`), else None. Reads
    only (the state, the render, one inspect): `plan` asks it too, and says what `up` will
    ask, not the answer (docs/applier.md says why)."""
    from docker.errors import NotFound  # noqa: PLC0415 - `plan` needs no engine

    staying = _staying_cas(rendered, state)
    if staying is None:
        return None
    try:
        redis = applier.client.containers.get(object_name(rendered.stack, "redis"))
    except NotFound:
        return None
    return staying if redis.status == "running" else None


def _staying_cas(rendered: RenderedStack, state: StackState | None) -> list[str] | None:
    """The serials of the CAs the trust bundle keeps when this up drops one (a rollover's
    retire step), else None."""
    from infra.rotation_probe import bundle_serials  # noqa: PLC0415 - as in _retire_refusal

    for resource in rendered.resources:
        prior = state.resources.get(resource.urn) if state else None
        if prior is None or not resource.type.endswith(f":{CA_TYPE}"):
            continue
        bundles = (prior.outputs.get("trustBundlePem"), resource.outputs.get("trustBundlePem"))
        if not all(bundles):
            continue  # a state from before CA rollovers: no bundle to drop a CA from
        before, after = (bundle_serials(str(pem)) for pem in bundles)
        if set(before) - set(after):
            return after
    return None


def _require_build_inputs(plan: Plan, stack: str) -> None:
    """Every declared image's build context holds what its Dockerfile copies, and the app's
    wheelhouse was made from the app's sources as they are, before anything is changed
    (infra/images.py `build_input_problem`, which the Pulumi program asks too). Every image
    counts, not only those to be rebuilt: a context's files make its image's tag
    (infra/images.py), so a missing input always means a rebuild, and a stale wheelhouse
    means the same tag for other code."""
    for step in plan.steps:
        spec = step.spec
        if not isinstance(spec, ImageSpec):
            continue
        context = Path(spec.build_kwargs["path"])
        dockerfile = Path(spec.build_kwargs["dockerfile"])
        found = build_input_problem(context, dockerfile, shown_context(context))
        if found is None:
            continue
        again = (
            f", then up again (scripts/setup-secure-redis.sh {stack} does both)"
            if found.host_made
            else ""
        )
        raise BuildInputError(
            f"stack {stack}: image {spec.tag}: {found.problem}; nothing was changed. "
            f"{found.fix}{again}"
        )


def _live_restore_warning(applier: LocalApplier) -> str | None:
    """The engine's live-restore warning (infra/engine_report.py), None when it is on or the
    engine does not say: an engine restart would leave the stack's services stopped."""
    from docker.errors import DockerException  # noqa: PLC0415 - `plan` needs no engine
    from requests.exceptions import RequestException  # noqa: PLC0415

    try:
        line = live_restore_line(applier.client.info())
    except (DockerException, RequestException):
        return None
    return line if line.startswith("WARNING") else None


@contextmanager
def _interruptions_after() -> Iterator[None]:
    """Ctrl-C and SIGTERM take effect when the block ends, as a KeyboardInterrupt.

    For the render: it pumps Pulumi's asyncio loop by hand (pulumi.runtime.sync_await), and a
    KeyboardInterrupt raised inside printed asyncio's "Exception in callback ... Leaving task"
    traceback, and once in five (0.15 s into it) left the process hanging until killed. It
    changes nothing and takes about a second, so a signal waits for its end.
    """
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = _handle(note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt


def _render(stack: str, root: Path, state: StackState | None) -> RenderedStack:
    previous = {
        urn: Prior(r.id, r.inputs, r.outputs)
        for urn, r in (state.resources.items() if state else ())
        if r.type.startswith(DYNAMIC_PREFIX)
    }
    with _interruptions_after():
        rendered = render_stack(stack, root=root, previous=previous)
    say(
        f"rendered {len(rendered.resources)} resources against "
        f"{'the stack state' if state else 'no state (first up)'}"
    )
    return rendered


def _all_changes(
    rendered: RenderedStack,
    plan: Plan,
    state: StackState | None,
    missing: frozenset[str],
    drifted: Mapping[str, Drift] | None = None,
) -> list[Change]:
    """Dynamic resources (decided by their providers during the render), then Docker objects."""
    resources = state.resources if state else {}
    dynamic = [r.change for r in rendered.resources if r.change is not None]
    declared = {r.urn for r in rendered.resources}
    dropped = [
        Change(urn, r.type, r.name, Op.DELETE)
        for urn, r in resources.items()
        if r.type.startswith(DYNAMIC_PREFIX) and urn not in declared
    ]
    return [*dynamic, *dropped, *docker_changes(plan, resources, missing, drifted)]


def _with_dynamic(previous: StackState, rendered: RenderedStack) -> StackState:
    """The previous state's Docker objects, and the dynamic resources as just rendered."""
    resources = {
        urn: r for urn, r in previous.resources.items() if not r.type.startswith(DYNAMIC_PREFIX)
    }
    for r in rendered.resources:
        if r.change is not None:
            resources[r.urn] = ResourceState(r.type, r.name, r.id, r.state_inputs, r.outputs)
    return StackState(previous.stack, resources)


def _applier(*, read_only: bool = False) -> LocalApplier:
    """`read_only`: for `plan`, a client that refuses any request but a read (engine.py
    `reading_only`)."""
    import docker  # noqa: PLC0415 - `plan` must work without a Docker engine
    from docker.errors import DockerException  # noqa: PLC0415
    from requests.exceptions import RequestException  # noqa: PLC0415

    from infra.applier.engine import LocalApplier, reading_only  # noqa: PLC0415

    try:
        client = docker.from_env(timeout=300)
        if read_only:
            client = reading_only(client)
        client.ping()
    except (DockerException, RequestException) as exc:
        raise ApplyError(
            f"the Docker engine is not reachable ({exc}); run scripts/bootstrap.sh to start it"
        ) from exc
    return LocalApplier(client, say=say)


def _print_changes(changes: Sequence[Change], plan: Plan, *, full: bool) -> None:
    """Every resource with `full` (plan), otherwise only what changes (up)."""
    for change in changes:
        if change.op is Op.SAME and not (full or change.reasons):
            continue
        verb, what = _change_words(change, plan, changes)
        say(f"  {verb:<7} {what}")
    say(f"plan: {_summary(changes, plan)}")


def _summary(
    changes: Sequence[Change], plan: Plan, *, done: bool = False, kept: Collection[str] = ()
) -> str:
    """The counts under the lines, each change counted under its line's verb (`re-run` from
    `_change_words`, the one wording of them), so `1 to re-run` beside the `re-run` line."""
    rerun = {c.name for c in changes if _change_words(c, plan, changes)[0] == "re-run"}
    return summary(changes, done=done, kept=kept, rerun=rerun)


# Whose material each initialiser writes (infra/components/material.py: `S-<consumer>-init`
# writes the volume `S-<consumer>-material`), and the consumer that keeps running meanwhile
# (None: a job that runs only when started).
_MATERIAL_OF: Final = {
    "redis": ("Redis's material", "Redis"),
    "app": ("the app's material", "the app"),
    "redis-exporter": ("the exporter's material", "the exporter"),
    "reload": ("the material of the TLS and ACL reload jobs", None),
    "rotation": ("the rotation pass's material", None),
}


def _change_words(change: Change, plan: Plan, changes: Sequence[Change]) -> tuple[str, str]:
    """The one wording of a change (plan, up, and status's `next up:`): its verb, then what
    and why. An initialiser to replace is re-run: `replace container ...-redis-init` read as if
    Redis itself were replaced (plan16 on s46, 2026-12-03), and Redis keeps running."""
    step = next((s for s in plan.steps if s.urn == change.urn), None)
    why = f": {'; '.join(change.reasons)}" if change.reasons else ""
    if step is None:
        return change.op.value, f"{change.name}{why}"
    consumer = _initialised(step.spec, plan.stack)
    if change.op is not Op.REPLACE or consumer is None:
        return change.op.value, f"{_describe(step)}{why}"
    material, runs_on = _MATERIAL_OF.get(
        consumer, (f"the volume {object_name(plan.stack, consumer + '-material')}", None)
    )
    name = object_name(plan.stack, consumer)
    if runs_on is None:
        note = f"writes {material}"
    elif any(c.name == name and c.op in (Op.REPLACE, Op.DELETE) for c in changes):
        note = f"writes {material}; {runs_on} is replaced too: its own line"
    else:
        note = f"writes {material}; {runs_on} keeps running"
    return "re-run", f"initialiser {object_name(plan.stack, consumer + '-init')} ({note}){why}"


def _initialised(spec: Spec, stack: str) -> str | None:
    """The consumer whose material volume `spec` initialises, or None: a material initialiser
    is the only container run to completion with uploads (a reload job reads its volume)."""
    if not (isinstance(spec, ContainerSpec) and spec.lifecycle.attach and spec.uploads):
        return None
    prefix = object_name(stack, "")
    name = spec.name or ""
    if not (name.startswith(prefix) and name.endswith("-init")):
        return None
    return name[len(prefix) : -len("-init")]


def _describe(step: Step) -> str:
    spec = step.spec
    if isinstance(spec, ImageSpec):
        return f"image {spec.tag} ({spec.build_kwargs['dockerfile']})"
    if isinstance(spec, NetworkSpec):
        internal = " internal" if spec.kwargs["internal"] else ""
        return f"network {spec.name} ({spec.kwargs['driver']}{internal})"
    if isinstance(spec, VolumeSpec):
        return f"volume {spec.name}"
    assert isinstance(spec, ContainerSpec)
    nets = ", ".join(e.network for e in spec.endpoints) or spec.host_config["network_mode"]
    extra = f", {len(spec.uploads)} uploads" if spec.uploads else ""
    mode = " (run to completion)" if spec.lifecycle.attach else ""
    return f"container {spec.name} on {nets}{extra}{mode}"


def _status(store: StateStore, project_dir: Path) -> int:
    stack = store.stack
    state = store.load()
    _warn_weak_passphrase(store)
    if state is None:
        print(
            f"apply: error: stack {stack} is not deployed from this checkout (no state at "
            f"{store.path}); deploy it with scripts/setup-secure-redis.sh {stack} (or "
            f"python -m infra.apply up --stack {stack})",
            file=sys.stderr,
        )
        return 2
    for line in material_lines(state, now=dt.datetime.now(dt.UTC)):
        say(line)
    if (unfinished := unfinished_rotation(state)) is not None:
        say(unfinished)
    for line in _next_up(stack, project_dir, state):
        say(line)
    return 0


def _next_up(stack: str, project_dir: Path, state: StackState) -> list[str]:
    """For `status`: what the next up would change, from the engine as `plan` reads it (the
    same decisions, the same read-only client), so drift shows where the certificates do;
    one line per change or stranger, then the plan's summary. The status above stands
    whatever this cannot read: it ends in one line saying why."""
    try:
        applier = _applier(read_only=True)
    except ApplyError as exc:
        return [f"next up: not checked against the engine: {exc}"]
    try:
        rendered = _render(stack, project_dir, state)
        plan = plan_stack(stack, rendered.resources, root=project_dir)
        changes = _engine_changes(rendered, plan, state, applier)
        strangers = applier.strangers(plan, state)
        note = _retire_note(rendered, state, applier)
    except (ApplyError, SettingsError, RenderError, BuildContextChanging) as exc:
        return [f"next up: not checked: {exc}"]
    lines = [
        "next up: " + " ".join(_change_words(c, plan, changes))
        for c in changes
        if c.op is not Op.SAME
    ]
    lines.extend(f"warning: {line}" for line in strangers)
    lines.append(
        f"next up: {_summary(changes, plan)} (`python -m infra.apply plan --stack {stack}` shows "
        "every resource)"
    )
    if note is not None:
        lines.append(note)
    return lines


def _warn_weak_passphrase(store: StateStore) -> None:
    if (weak := store.weak_passphrase()) is not None:
        print(f"apply: {weak}", file=sys.stderr)


def _rekey(store: StateStore) -> int:
    """The state sealed again with NEW_PASSPHRASE_ENV, under the stack's lock (an up saving
    meanwhile would seal it with the old one again); nothing on the engine is touched."""
    new = os.environ.get(NEW_PASSPHRASE_ENV, "")
    if not new:
        print(
            f"apply: error: rekey needs the new passphrase in {NEW_PASSPHRASE_ENV} (at least "
            f"{MIN_PASSPHRASE_CHARS} characters; `read -rs {NEW_PASSPHRASE_ENV}; export "
            f"{NEW_PASSPHRASE_ENV}` keeps it off the screen and the shell's history); nothing "
            "was changed",
            file=sys.stderr,
        )
        return 2
    with store.locked("rekey"):
        done = store.rekey(new)
    stack = store.stack
    say(
        f"the state of stack {stack} ({store.path}) is sealed with the passphrase in "
        f"{NEW_PASSPHRASE_ENV}: put it in {PASSPHRASE_ENV} from now on"
    )
    for left in done.removed:
        say(f"removed {left}, a copy of the state an interrupted write had left")
    old = f"the key file {done.key_file}" if done.key_file else "the old passphrase"
    # rekey re-seals only the state file: a copy made before (a backup, a copied directory)
    # still opens with the old credential, and holds the very secrets the stack runs with,
    # which re-sealing does not change (docs/applier.md, "The state is encrypted at rest").
    say(
        f"copies of {store.path.name} made before this rekey (backups, a copied "
        f".secure-redis) still open with {old}: replace them with copies of the re-sealed "
        "file; and if the old credential may be known to someone, rotate what it protects "
        f"(`scripts/rotate.sh {stack} all`): re-sealing changes no key or password"
    )
    if done.key_file is None:
        return 0
    if others := [s for s in done.key_file_sealing if s != stack]:
        say(
            f"{done.key_file} still seals the state of stack(s) {', '.join(others)}: keep it "
            "until they are re-sealed too (`python -m infra.apply rekey --stack <stack>`)"
        )
    else:
        say(
            f"{done.key_file} now seals no state here and opens only such older copies: "
            f"remove it (`rm {done.key_file}`) once you keep none you may need (without "
            f"{PASSPHRASE_ENV}, the next new state makes a new key file)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
