"""secure_cache: an encrypted cache client for TLS-only, ACL-locked Redis.

Values are sealed with AES-256-GCM before they leave the process, key names are keyed hashes,
the transport is mutual TLS with an ACL user, and an unreachable Redis degrades to a bounded
in-memory cache. See client.py for the API and settings.py for the environment contract.
"""

from __future__ import annotations

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
