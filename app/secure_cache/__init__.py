"""secure_cache: an encrypted cache client for TLS-only, ACL-locked Redis.

Values are sealed with AES-256-GCM before they leave the process, key names are keyed hashes,
the transport is mutual TLS with an ACL user, and an unreachable Redis degrades to a bounded
in-memory cache. See client.py for the API and settings.py for the environment contract.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from secure_cache.client import AsyncSecureCache, SecureCache
    from secure_cache.core import RotationReport
    from secure_cache.crypto import Keyring
    from secure_cache.errors import (
        BackendUnavailable,
        CommandRejected,
        ConfigurationError,
        IntegrityError,
        SecureCacheError,
    )
    from secure_cache.settings import ServiceSettings, Settings, load_settings

# The public names, loaded when first asked for (PEP 562), not when the package is: every
# `python -m secure_cache.X` imports this file first, and importing the client here cost the
# exporter's health check, run every 5 s on a quarter of a CPU, 0.3 CPU-seconds of redis,
# cryptography and prometheus_client it never uses (secure_cache/exporter_health.py).
_LAZY: Final = {
    "AsyncSecureCache": "client",
    "SecureCache": "client",
    "RotationReport": "core",
    "Keyring": "crypto",
    "BackendUnavailable": "errors",
    "CommandRejected": "errors",
    "ConfigurationError": "errors",
    "IntegrityError": "errors",
    "SecureCacheError": "errors",
    "ServiceSettings": "settings",
    "Settings": "settings",
    "load_settings": "settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'secure_cache' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"secure_cache.{module}"), name)
    globals()[name] = value  # once: later lookups find it without calling here
    return value


__version__ = "0.1.0"

__all__ = [
    "AsyncSecureCache",
    "BackendUnavailable",
    "CommandRejected",
    "ConfigurationError",
    "IntegrityError",
    "Keyring",
    "RotationReport",
    "SecureCache",
    "SecureCacheError",
    "ServiceSettings",
    "Settings",
    "__version__",
    "load_settings",
]
