"""scripts/wheel_hashes.py: the hash-pinned requirements the app image installs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scripts.wheel_hashes import WheelhouseError, hashed_requirements, main, parse_pins


def _wheel(directory: Path, name: str, content: bytes = b"wheel") -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def test_hashes__one_line_per_pin_with_its_wheels_sha256(tmp_path: Path) -> None:
    a = _wheel(tmp_path, "redis-8.1.0-py3-none-any.whl", b"a")
    b = _wheel(tmp_path, "async_timeout-5.0.1-py3-none-any.whl", b"b")
    _wheel(tmp_path, "redis-8.0.0-py3-none-any.whl", b"old")  # a stale version is ignored
    text = hashed_requirements([("redis", "8.1.0"), ("async-timeout", "5.0.1")], [a, b])
    assert text.splitlines() == [
        f"async_timeout==5.0.1 --hash=sha256:{hashlib.sha256(b'b').hexdigest()}",
        f"redis==8.1.0 --hash=sha256:{hashlib.sha256(b'a').hexdigest()}",
    ]


def test_hashes__a_pin_without_its_wheel_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError, match=r"0 wheels for redis==8\.1\.0"):
        hashed_requirements([("redis", "8.1.0")], [])


@pytest.mark.parametrize("line", ["redis>=8", "redis", "-e ."], ids=["range", "bare", "editable"])
def test_hashes__only_exact_pins_are_accepted(line: str) -> None:
    with pytest.raises(WheelhouseError, match="not an exact pin"):
        parse_pins([line])


def test_hashes__command_line_adds_the_projects_own_wheel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _wheel(tmp_path, "redis-8.1.0-py3-none-any.whl")
    _wheel(tmp_path, "secure_cache-0.1.0-py3-none-any.whl")
    requirements = tmp_path / "req.txt"
    requirements.write_text("# pins\nredis==8.1.0\n")
    assert main([str(tmp_path), str(requirements), "secure_cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["redis==8.1.0", "secure_cache==0.1.0"]


def test_hashes__the_image_requirements_are_all_exact_pins() -> None:
    root = Path(__file__).resolve().parents[2]
    pins = parse_pins((root / "app" / "requirements-image.txt").read_text().splitlines())
    assert pins
