"""Pure: what an operator wants to know about a stack's material, from its state: each
certificate's serial and days to expiry (and when it renews), and the data-key generation.
Nothing secret is read: certificates are public, and keys are only counted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from infra import pki
from infra.applier.state import StackState

CERTIFICATE_TYPES = ("CertificateAuthority", "LeafCertificate")
KEYRING_TYPE = "DataKeyring"


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
            previous = [k for k in str(resource.outputs.get("previousKeys") or "").split(",") if k]
            yield (
                f"data keys {resource.name}: generation {int(resource.inputs['generation'])}, "
                f"{len(previous)} previous key(s) still readable"
            )


__all__ = ["material_lines"]
