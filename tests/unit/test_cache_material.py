"""MaterialFiles: which rewrites of the material files a client sees, and when."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secure_cache.errors import ConfigurationError
from secure_cache.material import MaterialFiles
from secure_cache.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FileSettings(Settings):
    """Settings whose reread() reads the password file only (no certificates needed)."""

    def reread(self) -> FileSettings:
        password = Path(self.sources["REDIS_PASSWORD_FILE"]).read_text().strip()
        if len(password) < 24:
            raise ConfigurationError(["REDIS_PASSWORD_FILE is too short"])
        return FileSettings(**{**self.__dict__, "password": password})


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("p" * 24)
    return path


def _settings(password_file: Path) -> FileSettings:
    return FileSettings(
        environment="development",
        host="redis",
        port=6380,
        db=0,
        username="app",
        password="p" * 24,
        ca_file=None,
        cert_file="",
        key_file="",
        data_key=os.urandom(32),
        sources={"REDIS_PASSWORD_FILE": str(password_file)},
    )


def test_due__once_per_interval(password_file: Path) -> None:
    clock = Clock()
    files = MaterialFiles(_settings(password_file), clock=clock, interval=1.0)
    assert not files.due()
    clock.now += 1.0
    assert files.due()
    assert files.poll() is None  # nothing changed
    assert not files.due()


def test_due__never_without_interval(password_file: Path) -> None:
    clock = Clock()
    files = MaterialFiles(_settings(password_file), clock=clock, interval=None)
    clock.now += 1e9
    assert not files.due()


@pytest.mark.parametrize("how", ["in-place", "rename-into-place"])
def test_poll__sees_a_rewrite_and_names_the_file(password_file: Path, how: str) -> None:
    files = MaterialFiles(_settings(password_file), clock=Clock(), interval=1.0)
    if how == "in-place":
        password_file.write_text("q" * 25)
    else:
        staged = password_file.with_name("staged")
        staged.write_text("q" * 25)
        staged.replace(password_file)
    found = files.poll()
    assert found is not None
    settings, changed, snapshot = found
    assert settings.password == "q" * 25
    assert changed == {str(password_file)}
    files.applied(settings, snapshot)
    assert files.poll() is None


def test_poll__a_state_that_failed_is_not_reread_until_the_files_change(
    password_file: Path,
) -> None:
    files = MaterialFiles(_settings(password_file), clock=Clock(), interval=1.0)
    password_file.write_text("short")  # caught half-written
    with pytest.raises(ConfigurationError):
        files.poll()
    assert files.poll() is None  # the same broken state: no reread, no new event
    password_file.write_text("r" * 30)  # the writer finished
    found = files.poll()
    assert found is not None
    assert found[0].password == "r" * 30
