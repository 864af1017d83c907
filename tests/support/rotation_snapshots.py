"""A stack's facts as `python -m infra.rotation_probe snapshot` writes them (Probe.snapshot), for
tests of the rotation probe's comparisons and of the commands that read a snapshot file."""

from __future__ import annotations

from typing import Any


def snapshot(**changes: Any) -> dict[str, Any]:
    """A settled stack's snapshot with `changes` applied."""
    base: dict[str, Any] = {
        "containers": {
            "redis": {"id": "r1", "startedAt": "t0"},
            "app": {"id": "a1", "startedAt": "t0"},
        },
        "served_serial": "A1",
        "served_issuer": "CA1",
        "server_serial": "A1",
        "server_issuer": "CA1",
        "app_cert_serial": "B1",
        "app_cert_issuer": "CA1",
        "redis_trusts": ["CA1"],
        "app_trusts": ["CA1"],
        "acl": {"default": [], "app": ["p1"], "healthcheck": ["h1"], "reload": ["r1"]},
        "app_password": "p1",
        "app_material": "..rev1",
        "app_backend": "redis",
        "primary_key_id": "k1",
        "previous_key_ids": [],
        "material_reloads": 1,
        "api_token": "t1",
        "api_previous_tokens": 0,
    }
    base.update(changes)
    return base


__all__ = ["snapshot"]
