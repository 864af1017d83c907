"""The applier's errors. Messages name the resource and what to do; they never carry a
property's value (values may be secret: upload contents, passwords)."""

from __future__ import annotations


class ApplyError(RuntimeError):
    """The stack could not be applied (or removed) on the local Docker engine."""


class NothingChanged(ApplyError):
    """An up refused before its first change (engine.py `_before_any_change`): the message
    says that nothing on the engine was changed, and infra/apply.py adds nothing about what
    the state records of applied steps (there are none)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"nothing was changed on the engine: {reason}")


class HostConflict(ValueError):
    """Another stack on the engine already holds a uid block or host port this stack declares
    (infra/applier/host_conflicts.py): a settings problem, refused before the first change."""


class UnsupportedProperty(ApplyError):
    """A declared property the local applier cannot honour. Nothing is silently dropped."""

    def __init__(self, resource: str, prop: str, why: str = "") -> None:
        self.resource = resource
        self.prop = prop
        reason = why or "the local applier does not implement it"
        super().__init__(
            f"{resource}: cannot honour property `{prop}`: {reason}. Remove it from the program, "
            "extend infra/applier/translate.py, or deploy with `pulumi up`."
        )


class BuildInputError(Exception):
    """An image's build context lacks a file its Dockerfile copies (the app's wheelhouse, made
    on the host); found before anything is changed."""


class ReloadNotTaken(Exception):
    """What Redis runs is not what the state says an earlier step gave it (a CA promote whose
    TLS reload did not take), and this `up` would lock its reload job out; found before
    anything is changed (infra/rotation_probe.py `retire_refusal`)."""


__all__ = [
    "ApplyError",
    "BuildInputError",
    "HostConflict",
    "NothingChanged",
    "ReloadNotTaken",
    "UnsupportedProperty",
]
