"""The exporter's PasswordFile re-reads REDIS_PASSWORD_FILE at each new connection (in-place
rotation): the same 1024-character cap as at start (settings.MAX_CREDENTIAL_CHARS) applies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from secure_cache.redis_exporter import PasswordFile
from secure_cache.settings import MAX_CREDENTIAL_CHARS


def test_password_file__a_rotated_file_over_the_cap_keeps_the_last_good_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "password"
    path.write_text("n" * (MAX_CREDENTIAL_CHARS + 1) + "\n")
    provider = PasswordFile("exporter", str(path), "last-good")
    with caplog.at_level(logging.WARNING, logger="secure_cache.redis_exporter"):
        assert provider.get_credentials() == ("exporter", "last-good")
    assert f"is {MAX_CREDENTIAL_CHARS + 1} characters" in caplog.text
    assert "nnnn" not in caplog.text  # the length only, never the value


def test_password_file__a_rotated_file_at_the_cap_is_used(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("n" * MAX_CREDENTIAL_CHARS + "\n")
    provider = PasswordFile("exporter", str(path), "last-good")
    assert provider.get_credentials() == ("exporter", "n" * MAX_CREDENTIAL_CHARS)


def test_password_file__the_over_cap_warning_is_logged_once_per_change_of_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """inputs16b: the warning was logged at every new connection (about each scrape) while the
    file stayed over the cap; now once when it goes over, once (info) when it is back."""
    path = tmp_path / "password"
    provider = PasswordFile("exporter", str(path), "last-good")
    warned = f"over the {MAX_CREDENTIAL_CHARS} accepted"
    with caplog.at_level(logging.INFO, logger="secure_cache.redis_exporter"):
        path.write_text("n" * (MAX_CREDENTIAL_CHARS + 1) + "\n")
        for _ in range(3):
            assert provider.get_credentials() == ("exporter", "last-good")
        path.write_text("n" * (MAX_CREDENTIAL_CHARS + 2) + "\n")
        assert provider.get_credentials() == ("exporter", "last-good")
        assert caplog.text.count(warned) == 1, caplog.text
        path.write_text("rotated\n")
        for _ in range(2):
            assert provider.get_credentials() == ("exporter", "rotated")
        assert caplog.text.count("within the cap again") == 1, caplog.text
        path.write_text("n" * (MAX_CREDENTIAL_CHARS + 1) + "\n")
        assert provider.get_credentials() == ("exporter", "rotated")
    assert caplog.text.count(warned) == 2, caplog.text
    assert "nnnn" not in caplog.text
