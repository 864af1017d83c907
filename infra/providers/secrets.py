"""Dynamic resources for generated secrets: ACL passwords and the app's data keyring.

Values come from infra/secretgen.py (the OS CSPRNG), are created once and live in Pulumi state
as secret outputs. A password also exposes its `#<sha256>` ACL form, which is not secret (a
SHA-256 of a long random string reveals nothing usable), so the ACL file stays readable.

A password rotates in two phases, like ElastiCache's AUTH token ROTATE then SET, and is never
replaced: raising `rotationGeneration` (or changing `length`) makes `update` generate a new
`value` and keep the old one as `previous`; both are in `aclHashes`, so Redis accepts either
while its clients switch. The next `up` (any `up`: `diff` reports a change while `previous` is
set) drops `previous`: every consumer of a password is a container of the stack, switched by
the ROTATE's own `up`. A password given a `retireGeneration` (the API token, whose clients are
outside the stack and switch at their operator's pace) keeps `previous` through every `up`
until `retireGeneration` reaches `rotationGeneration` (scripts/rotate.sh api-token-retire): an
`up` for anything else retired it before, and every client not yet switched got 401.
`stable` is the one value Redis accepts both before and after the phase's ACL reload:
consumers whose files are written before that reload (the health check and the reload job
themselves) use it; the app, whose files are written after it, uses `value`.

`retired` is the password the last SET dropped (carried unchanged through the next ROTATE): the
reload job's second try (infra/components/reload.py). A SET is recorded in state whether or not
the ROTATE before it reached Redis: when the ROTATE's `ACL LOAD` failed (Redis at `maxclients`,
measured on a deployed stack), Redis still holds only the old password, `stable` is the new one
it never loaded, and every later `up` failed on the reload job's WRONGPASS until Redis was
restarted. The old password is the one Redis accepts in that case. Only a password created with
`keepRetired` (the reload job's, the one consumer of it) keeps it; every other one forgets the
password its SET drops, so a retired password or API token survives in no state, and an `up`
finding one kept by code before this forgets it without changing any file (attack pass of
2026-12-03 on s87, docs/attack-surface.md).

The keyring rotates in place: raising `generation` makes a new primary key and keeps the old one
readable among `previousKeys` (at most `keepPrevious` of them), so cached entries survive until
the app's rotation pass has re-encrypted them; lowering `keepPrevious` to 0 retires them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from infra import secretgen
from infra.providers._common import ChangeRefused, as_int, changed, inputs_only, new_revision
from infra.redis_acl import password_hash

# Previous keys travel as one string; base64 never contains a comma.
KEY_SEPARATOR: Final = ","


ROTATION_GENERATION: Final = "rotationGeneration"
RETIRE_GENERATION: Final = "retireGeneration"
KEEP_RETIRED: Final = "keepRetired"
PASSWORD_SECRET_OUTPUTS: Final = ["value", "previous", "stable", "retired"]


class PasswordPhase(StrEnum):
    STEADY = "steady"
    """One password."""
    ROTATING = "rotating"
    """`value` is new, `previous` still accepted; the next `up` drops it (with a
    `retireGeneration`: the `up` that raises it to `rotationGeneration`)."""


def password_outputs(value: str, previous: str, retired: str = "") -> dict[str, Any]:
    """The outputs of a password in its phase; `previous` and `retired` are "" when there is
    none."""
    return {
        "value": value,
        "previous": previous,
        "stable": previous or value,
        "retired": retired,
        "aclHash": password_hash(value),
        "aclHashes": [password_hash(v) for v in (value, previous) if v],
        "phase": (PasswordPhase.ROTATING if previous else PasswordPhase.STEADY).value,
        "revision": new_revision(),
    }


class GeneratedPasswordProvider(ResourceProvider):
    INPUT_KEYS: Final = ("length", ROTATION_GENERATION)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        length = as_int(news, "length", failures, minimum=secretgen.MIN_PASSWORD_LENGTH)
        # A state written before rotation existed has no generation: it reads as 0.
        generation = as_int(
            {ROTATION_GENERATION: 0, **news}, ROTATION_GENERATION, failures, minimum=0
        )
        keep = bool(news.get(KEEP_RETIRED, False))
        checked = {**news, "length": length, ROTATION_GENERATION: generation, KEEP_RETIRED: keep}
        if news.get(RETIRE_GENERATION) is not None:
            checked[RETIRE_GENERATION] = as_int(news, RETIRE_GENERATION, failures, minimum=0)
        return CheckResult(checked, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Never a replacement: a replaced password would be valid nowhere until every consumer
        # had switched at once. A previous password due to retire is a change too: this `up`
        # ends it, and so is a retired one that nothing may keep (a state written before
        # keepRetired).
        rotating = self._rotation_requested(olds, news)
        if rotating and (refusal := _rotation_over_pending(olds, news)) is not None:
            raise ChangeRefused(refusal)
        retiring = bool(olds.get("previous")) and not _holds_previous(news)
        pending = retiring or self._stale_retired(olds, news)
        return DiffResult(changes=rotating or pending, replaces=[])

    @staticmethod
    def _stale_retired(olds: dict[str, Any], news: dict[str, Any]) -> bool:
        return bool(olds.get("retired")) and not news.get(KEEP_RETIRED)

    def _rotation_requested(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        defaults = {ROTATION_GENERATION: 0}
        return bool(changed({**defaults, **olds}, {**defaults, **news}, self.INPUT_KEYS))

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {
            **inputs_only(props, self.INPUT_KEYS),
            KEEP_RETIRED: bool(props.get(KEEP_RETIRED)),
            **password_outputs(secretgen.generate_password(int(props["length"])), ""),
        }
        return CreateResult(str(outs["revision"]), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        current = str(olds["value"])
        keep = bool(news.get(KEEP_RETIRED))
        inputs = {**inputs_only(news, self.INPUT_KEYS), KEEP_RETIRED: keep}
        if self._rotation_requested(olds, news):
            # ROTATE: a new value beside the current one (an earlier previous is dropped: its
            # clients switched during the phase that introduced `current`).
            outs = password_outputs(
                secretgen.generate_password(int(news["length"])),
                current,
                str(olds.get("retired") or "") if keep else "",
            )
        elif olds.get("previous") and not _holds_previous(news):
            # SET: only the current value stays; the one dropped is kept as `retired` where
            # asked (Redis still accepts it if this rotation's ROTATE never reached it).
            outs = password_outputs(current, "", str(olds["previous"]) if keep else "")
        else:
            # Only a retired password nothing may keep: forget it (a held `previous` stays). No
            # file holds it (only the reload job is given one), so the material and its
            # revision stay as they are.
            outs = {**olds, "retired": ""}
        return UpdateResult({**outs, **inputs})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)


class DataKeyringProvider(ResourceProvider):
    INPUT_KEYS: Final = ("generation", "keepPrevious")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        generation = as_int(news, "generation", failures, minimum=1)
        keep = as_int(news, "keepPrevious", failures, minimum=0)
        old_generation = olds.get("generation")
        if generation is not None and old_generation is not None and generation < old_generation:
            failures.append(
                CheckFailure(
                    "generation",
                    # The setting and the way back are named: the bare "may only increase"
                    # left a user who had lowered it by hand with no way on.
                    f"secure-redis:dataKeyGeneration is {generation}, below the stack's data-key "
                    f"generation {int(old_generation)}: a lower value cannot bring a retired key "
                    "back; nothing was changed. Set it back (python -m infra.stack_config set "
                    f"--stack STACK dataKeyGeneration {int(old_generation)}); to rotate the data "
                    "key, run scripts/rotate.sh STACK data-key",
                )
            )
        return CheckResult({**news, "generation": generation, "keepPrevious": keep}, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Never a replacement: a replaced keyring would lose every cached entry at once.
        if (refusal := _retiring_raise(olds, news)) is not None:
            raise ChangeRefused(refusal)
        return DiffResult(changes=bool(changed(olds, news, self.INPUT_KEYS)), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        revision = new_revision()
        outs = {
            **inputs_only(props, self.INPUT_KEYS),
            "primaryKey": secretgen.generate_data_key(),
            "previousKeys": "",
            "revision": revision,
        }
        return CreateResult(revision, outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        previous = [k for k in str(olds.get("previousKeys") or "").split(KEY_SEPARATOR) if k]
        primary = str(olds["primaryKey"])
        if int(news["generation"]) > int(olds["generation"]):
            previous.insert(0, primary)
            primary = secretgen.generate_data_key()
        kept = KEY_SEPARATOR.join(previous[: int(news["keepPrevious"])])
        same_keys = primary == olds["primaryKey"] and kept == (olds.get("previousKeys") or "")
        outs = {
            **inputs_only(news, self.INPUT_KEYS),
            "primaryKey": primary,
            "previousKeys": kept,
            # The revision names the key material: a setting change that leaves the keys as
            # they are (keepPrevious raised again after a retirement) rewrites no file.
            "revision": olds["revision"] if same_keys else new_revision(),
        }
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)


def _holds_previous(news: dict[str, Any]) -> bool:
    """Whether a pending `previous` stays accepted through this `up`: only with a
    `retireGeneration` (the API token), and until it reaches `rotationGeneration`. A state or a
    program from before the API token had one holds none: every `up` retired it."""
    retire = news.get(RETIRE_GENERATION)
    return retire is not None and int(retire) < int(news.get(ROTATION_GENERATION) or 0)


def _rotation_over_pending(olds: dict[str, Any], news: dict[str, Any]) -> str | None:
    """Why a rotation must not be applied, or None: the update keeps one `previous`, so a
    rotation while a held one is not retired in the same `up` (retireGeneration still below
    the generation that made it) would make the pending token the old one and refuse the token
    before it at once, under the clients still sending it. scripts/rotate.sh api-token refuses
    that before its up; this catches the same raise made by hand, under `pulumi up` too, and a
    passwordLength raised above the token's length, which rotates it as well. Only the API
    token has a retireGeneration (infra/components/secrets.py), so the settings are named."""
    retire = news.get(RETIRE_GENERATION)
    old = int(olds.get(ROTATION_GENERATION) or 0)
    if not olds.get("previous") or retire is None or int(retire) >= old:
        return None
    new = int(news.get(ROTATION_GENERATION) or 0)
    if new != old:
        why = (
            f"apiTokenRotationGeneration {'raised' if new > old else 'lowered'} from {old} to {new}"
        )
        back = f"apiTokenRotationGeneration back to {old}"
    else:
        # Named as the setting the operator changed: "the API token's length" read as no
        # setting, and the way back named apiTokenRotationGeneration (walkthrough, 2026-12-06).
        why, back = "passwordLength changed, which rotates the API token,", "passwordLength back"
    return (
        f"secure-redis:{why} while the earlier API token of rotation {old} is still accepted "
        f"(apiTokenRetireGeneration {int(retire)}): this up would refuse that earlier token at "
        f"once, under every client still sending it; nothing was changed. Set {back}; once "
        "every client uses the current token (docker exec secure-redis-STACK-app cat "
        "/etc/secure-cache/api.token), run scripts/rotate.sh STACK api-token-retire, then make "
        "the change again"
    )


def _retiring_raise(olds: dict[str, Any], news: dict[str, Any]) -> str | None:
    """Why a raised generation must not be applied, or None: the update keeps the old primary
    and the previous keys, newest first, up to keepPrevious, so a raise made while a previous
    key is still read (the rotation pass not run, or its key not retired), or with keepPrevious
    0, retires a key entries may still be sealed with, and every such entry would be a miss
    (found on a deployed stack: dataKeyGeneration raised by hand twice). `check` cannot ask
    this: the engine hands it the old inputs only, not the keys held. The retire itself
    (keepPrevious lowered with the generation as it is) stays allowed: scripts/rotate.sh takes
    it after the pass."""
    old, new = int(olds["generation"]), int(news["generation"])
    held = [k for k in str(olds.get("previousKeys") or "").split(KEY_SEPARATOR) if k]
    keep = int(news["keepPrevious"])
    if new <= old or len(held) + 1 <= keep:
        return None
    if not held:
        return (
            f"secure-redis:dataKeyGeneration raised from {old} to {new} with "
            "dataKeyKeepPrevious 0: this up would make a new data key and keep no old one, so "
            "every cached entry would be lost at once; nothing was changed. Set "
            "dataKeyKeepPrevious to 1 (scripts/rotate.sh STACK data-key rotates so, moves "
            "every entry, then retires the old key)"
        )
    return (
        f"secure-redis:dataKeyGeneration raised from {old} to {new} while the app still reads "
        f"{len(held)} previous data key(s) and dataKeyKeepPrevious is {keep}: this up would "
        "retire a data key that cached entries may still be sealed with (the rotation pass "
        f"moves them), and they would be lost; nothing was changed. Set dataKeyGeneration back "
        f"to {old} and finish the rotation under way with scripts/rotate.sh STACK data-key (it "
        "moves every entry, then retires the old key), then rotate again; or set "
        f"dataKeyKeepPrevious to {len(held) + 1} to keep every key readable"
    )


class GeneratedPassword(Resource, module="secure-redis", name="GeneratedPassword"):
    """A random alphanumeric password; `value`, `previous`, `stable` and `retired` are secret,
    `aclHash` is the `#<sha256>` form of `value` and `aclHashes` those of every accepted value.
    `keep_retired`: keep the password the last SET dropped as `retired` (the reload job's second
    try); without it, `retired` stays empty. `retire_generation`: keep `previous` through every
    `up` until it reaches `rotation_generation` (the API token); None: the next `up` drops it."""

    value: pulumi.Output[str]
    previous: pulumi.Output[str]
    stable: pulumi.Output[str]
    retired: pulumi.Output[str]
    aclHash: pulumi.Output[str]
    aclHashes: pulumi.Output[list[str]]
    phase: pulumi.Output[str]
    revision: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        length: int,
        rotation_generation: int = 0,
        keep_retired: bool = False,
        retire_generation: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # A password without one is declared as before, so its state and diff stay the same.
        held = {} if retire_generation is None else {RETIRE_GENERATION: retire_generation}
        props: dict[str, Any] = {
            "length": length,
            ROTATION_GENERATION: rotation_generation,
            KEEP_RETIRED: keep_retired,
            **held,
            **dict.fromkeys(
                (
                    "value",
                    "previous",
                    "stable",
                    "retired",
                    "aclHash",
                    "aclHashes",
                    "phase",
                    "revision",
                )
            ),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=PASSWORD_SECRET_OUTPUTS)
        super().__init__(
            GeneratedPasswordProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )


class DataKeyring(Resource, module="secure-redis", name="DataKeyring"):
    """The app's AES-256 keys: `primaryKey` seals, `previousKeys` (comma-separated) only open."""

    primaryKey: pulumi.Output[str]
    previousKeys: pulumi.Output[str]
    revision: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        generation: int,
        keep_previous: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "generation": generation,
            "keepPrevious": keep_previous,
            **dict.fromkeys(("primaryKey", "previousKeys", "revision")),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["primaryKey", "previousKeys"])
        super().__init__(
            DataKeyringProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )


__all__ = [
    "KEEP_RETIRED",
    "KEY_SEPARATOR",
    "PASSWORD_SECRET_OUTPUTS",
    "RETIRE_GENERATION",
    "ROTATION_GENERATION",
    "DataKeyring",
    "DataKeyringProvider",
    "GeneratedPassword",
    "GeneratedPasswordProvider",
    "PasswordPhase",
    "password_outputs",
]
