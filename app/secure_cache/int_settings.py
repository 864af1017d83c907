"""Whole-number settings from the environment, and HTTP_PORT, with the standard library alone.

settings.py reads every number through int_setting. HTTP_PORT is here, not there, because the
image's health check (`python -m secure_cache healthcheck`, app/Dockerfile) needs only it:
through settings.py it loaded `cryptography`, and through the command line's other imports
`redis` and the whole client, on every run of a check the engine makes every 15 s
(tests/unit/test_app_healthcheck.py keeps it to the standard library).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final

DEFAULT_HTTP_PORT: Final = 8080


def whole_number(text: str) -> int:
    """`text` as int() reads it, but in the digits 0-9 only: int() also reads every other
    script's (HTTP_PORT in fullwidth digits, U+FF18 U+FF10 U+FF18 U+FF10, was port 8080).
    ValueError otherwise. The CLI's options (secure_cache/__main__.py) and every setting
    below go through it."""
    if not text.isascii():
        raise ValueError(f"{text[:20]!r} is not written in the digits 0-9")
    return int(text)


def int_setting(
    env: Mapping[str, str], name: str, default: int, low: int, high: int, problems: list[str]
) -> int:
    """`name` from `env` as a whole number from `low` to `high`, `default` when unset; a bad
    value is appended to `problems` (and gives `default`), never an exception."""
    # ASCII whitespace only (string.whitespace): str.strip() also removed a leading no-break
    # space (U+00A0), an invisible character read as nothing; kept, whole_number refuses it.
    raw = env.get(name, "").strip(string.whitespace)
    if not raw:
        return default
    try:
        value = whole_number(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        shown = raw[:20] if raw.isprintable() else "a non-printable value"
        problems.append(f"{name} must be an integer from {low} to {high}; got {shown!r}.")
        return default
    return value


def http_port(env: Mapping[str, str], problems: list[str]) -> int:
    """HTTP_PORT (default 8080); a bad value is a problem, never an exception."""
    return int_setting(env, "HTTP_PORT", DEFAULT_HTTP_PORT, 1, 65535, problems)


__all__ = ["DEFAULT_HTTP_PORT", "http_port", "int_setting", "whole_number"]
