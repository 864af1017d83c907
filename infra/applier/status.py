"""Pure: what an operator wants to know about a stack's material, from its state: each
certificate's serial and days to expiry (and when it renews), and the data-key generation.
Nothing secret is read: certificates are public, and keys are only counted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from infra import pki
from infra.applier.deployed import API_TOKEN_SUFFIX, CA_TYPE, KEYRING_TYPE
from infra.applier.state import ResourceState, StackState

CERTIFICATE_TYPES = (CA_TYPE, "LeafCertificate")
# Rotations the providers take one `up` per step (infra/providers/certificates.py CaPhase,
# infra/providers/secrets.py PasswordPhase), by the phase a resource is left in: what it means,
# and how many more ups finish it. Any other phase but "steady" is counted as one more up.
_UNFINISHED = {
    "introduced": ("new CA trusted beside the old one, not issuing yet", 2),
    "promoted": ("new CA issues every certificate, the old one still trusted", 1),
    "rotating": ("new password in use, the old one still accepted", 1),
}


def material_lines(state: StackState, *, now: dt.datetime) -> Iterator[str]:
    for resource in sorted(state.resources.values(), key=lambda r: r.name):
        kind = resource.type.rsplit(":", 1)[-1]
        if kind in CERTIFICATE_TYPES and resource.outputs.get("certPem"):
            cert = pki.load_certificate(str(resource.outputs["certPem"]).encode())
            days = (cert.not_valid_after_utc - now).days
            renew = int(resource.inputs.get("renewBeforeDays", 0))
            yield (
                f"certificate {resource.name}: serial {cert.serial_number:x}, expires "
                f"{cert.not_valid_after_utc:%Y-%m-%d} ({days} days left; renewed by up "
                f"{renew} days before)"
            )
        elif kind == KEYRING_TYPE:
            previous = _previous_keys(resource)
            yield (
                f"data keys {resource.name}: generation {int(resource.inputs['generation'])}, "
                f"{len(previous)} previous key(s) still readable"
            )


def _previous_keys(keyring: ResourceState) -> list[str]:
    # infra/providers/secrets.py KEY_SEPARATOR (not imported: it loads Pulumi)
    return [k for k in str(keyring.outputs.get("previousKeys") or "").split(",") if k]


def _data_keys(state: StackState) -> set[str]:
    """Every data key the state's keyring holds, the primary and the previous ones (compared
    only, never shown: they are secrets)."""
    held: set[str] = set()
    for resource in state.resources.values():
        if resource.type.rsplit(":", 1)[-1] == KEYRING_TYPE:
            keys = [str(resource.outputs.get("primaryKey") or ""), *_previous_keys(resource)]
            held.update(k for k in keys if k)
    return held


def retired_data_keys_line(before: StackState, after: StackState) -> str | None:
    """A line when an up retired data keys, or None. scripts/rotate.sh data-key rewrites
    Redis's append-only file after its retire, so that no entry sealed with the retired key
    stays on disk; a plain up that applied the retire (an interrupted rotation finished by
    hand, walkthrough of 2026-12-06) left that file as it was, and nothing said so."""
    retired = len(_data_keys(before) - _data_keys(after))
    if not retired:
        return None
    return (
        f"this up retired {retired} data key(s); Redis's append-only file may still hold "
        "entries sealed with them until it is rewritten: python -m infra.rotation_probe "
        f"rewrite-aof --stack {after.stack} (scripts/rotate.sh {after.stack} data-key does it "
        "itself)"
    )


def unfinished_rotation(state: StackState) -> str | None:
    """One line naming each rotation an `up` left half done (a CA rollover, a password or API
    token rotation) and how many more ups finish it; None when there is none. A setting change
    starts such a rotation too (keyAlgorithm or caValidityDays: the CA; passwordLength: every
    password), and until it finishes the old CA or password is still accepted. The API token is
    the exception: its old token stays accepted on purpose until every client has the new one,
    so it is named with its own way on, never counted as ups to run."""
    pending = []
    token = None
    most = 0
    for resource in sorted(state.resources.values(), key=lambda r: r.name):
        phase = str(resource.outputs.get("phase") or "steady")
        if phase == "steady":
            continue
        if resource.name.endswith(API_TOKEN_SUFFIX):
            token = (
                f"{resource.name}: the old API token stays accepted, through every up, until "
                "its retire; once every client has the new one, run "
                f"scripts/rotate.sh {state.stack} api-token-retire"
            )
            continue
        meaning, ups = _UNFINISHED.get(phase, (phase, 1))
        most = max(most, ups)
        pending.append(f"{resource.name} ({meaning})")
    lines = []
    if pending:
        lines.append(
            f"rotation unfinished: {'; '.join(pending)}. Run up {most} more time(s) to finish "
            "it (one step per up; docs/day2.md)"
        )
    if token is not None:
        lines.append(token)
    return ". ".join(lines) or None


__all__ = ["CA_TYPE", "CERTIFICATE_TYPES", "material_lines", "unfinished_rotation"]
