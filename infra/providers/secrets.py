"""Dynamic resources for generated secrets: ACL passwords and the app's data keyring.

Values come from infra/secretgen.py (the OS CSPRNG), are created once and live in Pulumi state
as secret outputs. A password also exposes its `#<sha256>` ACL form, which is not secret (a
SHA-256 of a long random string reveals nothing usable), so the ACL file stays readable.

The keyring rotates in place: raising `generation` makes a new primary key and keeps the old one
readable among `previousKeys` (at most `keepPrevious` of them), so cached entries survive until
the app's rotation pass has re-encrypted them; lowering `keepPrevious` to 0 retires them.
"""

from __future__ import annotations

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
from infra.providers._common import as_int, changed, inputs_only, new_revision
from infra.redis_acl import password_hash

# Previous keys travel as one string; base64 never contains a comma.
KEY_SEPARATOR: Final = ","


class GeneratedPasswordProvider(ResourceProvider):
    INPUT_KEYS: Final = ("length",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        length = as_int(news, "length", failures, minimum=secretgen.MIN_PASSWORD_LENGTH)
        return CheckResult({**news, "length": length}, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed(olds, news, self.INPUT_KEYS)
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        value = secretgen.generate_password(int(props["length"]))
        revision = new_revision()
        outs = {
            **inputs_only(props, self.INPUT_KEYS),
            "value": value,
            "aclHash": password_hash(value),
            "revision": revision,
        }
        return CreateResult(revision, outs)

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
                    f"generation may only increase (it is {int(old_generation)}); a lower value "
                    "cannot bring a retired key back",
                )
            )
        return CheckResult({**news, "generation": generation, "keepPrevious": keep}, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Never a replacement: a replaced keyring would lose every cached entry at once.
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
        kept = previous[: int(news["keepPrevious"])]
        outs = {
            **inputs_only(news, self.INPUT_KEYS),
            "primaryKey": primary,
            "previousKeys": KEY_SEPARATOR.join(kept),
            "revision": new_revision(),
        }
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)


class GeneratedPassword(Resource, module="secure-redis", name="GeneratedPassword"):
    """A random alphanumeric password; `value` is secret, `aclHash` is its `#<sha256>` form."""

    value: pulumi.Output[str]
    aclHash: pulumi.Output[str]
    revision: pulumi.Output[str]

    def __init__(
        self, name: str, *, length: int, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "length": length,
            **dict.fromkeys(("value", "aclHash", "revision")),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["value"])
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
    "KEY_SEPARATOR",
    "DataKeyring",
    "DataKeyringProvider",
    "GeneratedPassword",
    "GeneratedPasswordProvider",
]
