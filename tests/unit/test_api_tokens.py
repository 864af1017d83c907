"""The HTTP API's bearer tokens (app/secure_cache/api_tokens.py): which tokens are accepted,
compared how, and how a two-phase rotation of the token files is picked up while running."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import pytest

from secure_cache.api_tokens import ApiTokens, token_accepted
from secure_cache.errors import ConfigurationError
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics
from secure_cache.settings import MIN_API_TOKEN_LENGTH, ServiceSettings
from tests.support.cache_env import FakeClock

OLD = "o" * 48  # checkov:skip=CKV_SECRET_6: test tokens, not credentials
NEW = "n" * 48
INTERVAL = 1.0


# -- the comparison ----------------------------------------------------------------------------


def test_token_accepted__each_accepted_token_and_nothing_else() -> None:
    accepted = (NEW.encode(), OLD.encode())
    assert token_accepted(NEW.encode(), accepted)
    assert token_accepted(OLD.encode(), accepted)
    for wrong in (b"", NEW[:-1].encode(), NEW.encode() + b"n", b"x" * 48, NEW.upper().encode()):
        assert not token_accepted(wrong, accepted)
    assert not token_accepted(NEW.encode(), ())


def test_token_accepted__compares_with_every_token_in_constant_time_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A match on the first token must not skip the others (the time would tell which one)."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    accepted = (NEW.encode(), OLD.encode(), b"t" * 48)
    assert token_accepted(NEW.encode(), accepted)
    assert [b for _a, b in calls] == list(accepted)


# -- the settings ------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    """Replace the file by a rename, as the material volumes' atomic writer does."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text + "\n")
    staged.replace(path)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    token, previous = tmp_path / "api.token", tmp_path / "api.previous-tokens"
    _write(token, OLD)
    _write(previous, "")
    return token, previous


def _env(files: tuple[Path, Path]) -> dict[str, str]:
    return {
        "HTTP_API_TOKEN_FILE": str(files[0]),
        "HTTP_API_PREVIOUS_TOKENS_FILE": str(files[1]),
        "HTTP_PORT": "18080",
    }


def test_service_settings__previous_tokens_are_accepted_after_the_current_one(
    files: tuple[Path, Path],
) -> None:
    _write(files[0], NEW)
    _write(files[1], f"{OLD}\n{OLD} {NEW}")
    settings = ServiceSettings.from_env(_env(files))
    assert settings.api_tokens == (NEW, OLD)  # duplicates and the current one dropped
    assert settings.watched_files == (str(files[0]), str(files[1]))
    assert settings.reread().port == 18080
    assert OLD not in repr(settings)
    assert NEW not in repr(settings)


def test_service_settings__no_previous_tokens_file_means_none(files: tuple[Path, Path]) -> None:
    env = _env(files)
    del env["HTTP_API_PREVIOUS_TOKENS_FILE"]
    assert ServiceSettings.from_env(env).api_tokens == (OLD,)


def test_service_settings__a_short_previous_token_is_named_by_position_never_shown(
    files: tuple[Path, Path],
) -> None:
    short = "s" * (MIN_API_TOKEN_LENGTH - 1)
    _write(files[1], f"{OLD} {short}")
    with pytest.raises(ConfigurationError) as raised:
        ServiceSettings.from_env(_env(files))
    message = str(raised.value)
    assert "HTTP_API_PREVIOUS_TOKENS: token(s) 2 are shorter" in message
    assert short not in message
    assert OLD not in message


# -- rotation while running ----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(files: tuple[Path, Path], clock: FakeClock) -> ApiTokens:
    return ApiTokens(ServiceSettings.from_env(_env(files)), clock=clock, interval=INTERVAL)


def test_rotation__old_token_works_until_retired_and_the_new_one_from_the_add_step(
    files: tuple[Path, Path], clock: FakeClock, tokens: ApiTokens
) -> None:
    token_file, previous_file = files
    assert tokens.accepts(OLD.encode())
    assert not tokens.accepts(NEW.encode())
    # Add: the new token is handed out, the old one kept beside it.
    _write(token_file, NEW)
    _write(previous_file, OLD)
    # No timed check is due yet: the refusal of the new token looks at the files at once.
    assert tokens.accepts(NEW.encode())
    assert tokens.accepts(OLD.encode())
    assert tokens.count == 2
    clock.advance(INTERVAL)
    assert tokens.accepts(OLD.encode())
    assert tokens.accepts(NEW.encode())
    # Retire: the old token leaves; refused from the next timed check on.
    _write(previous_file, "")
    clock.advance(INTERVAL)
    assert not tokens.accepts(OLD.encode())
    assert tokens.accepts(NEW.encode())
    assert tokens.count == 1


def test_rotation__a_refused_token_does_not_reread_unchanged_files(
    files: tuple[Path, Path], tokens: ApiTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    original = ServiceSettings.reread

    def counting(self: ServiceSettings) -> ServiceSettings:
        reads.append(1)
        return original(self)

    monkeypatch.setattr(ServiceSettings, "reread", counting)
    for _ in range(5):
        assert not tokens.accepts(b"w" * 48)
    assert reads == []  # a stat per file, nothing read while the files are unchanged


def test_rotation__files_that_do_not_validate_keep_the_old_tokens_and_log_no_token(
    files: tuple[Path, Path],
    clock: FakeClock,
    tokens: ApiTokens,
    caplog: pytest.LogCaptureFixture,
) -> None:
    short = "s" * (MIN_API_TOKEN_LENGTH - 1)
    _write(files[0], short)
    clock.advance(INTERVAL)
    with caplog.at_level(logging.INFO, logger="secure_cache.service"):
        assert tokens.accepts(OLD.encode())
        assert not tokens.accepts(short.encode())
    assert "event=api_token_reload_failure problems=1" in caplog.text
    # Fixed files are picked up.
    _write(files[0], NEW)
    _write(files[1], OLD)
    with caplog.at_level(logging.INFO, logger="secure_cache.service"):
        assert tokens.accepts(NEW.encode())
    assert "event=api_token_reload accepted=2" in caplog.text
    for secret in (OLD, NEW, short):
        assert secret not in caplog.text


def test_rotation__settings_built_by_hand_watch_nothing(clock: FakeClock) -> None:
    tokens = ApiTokens(ServiceSettings(api_token=OLD), clock=clock, interval=INTERVAL)
    clock.advance(10 * INTERVAL)
    assert tokens.accepts(OLD.encode())
    assert not tokens.accepts(NEW.encode())


# -- the gauge ---------------------------------------------------------------------------------


def test_metrics__previous_tokens_gauge_follows_the_rotation_and_holds_no_token(
    files: tuple[Path, Path], clock: FakeClock, tokens: ApiTokens
) -> None:
    """secure_cache_api_previous_tokens (ApiTokenRotationUnfinished in monitoring/alerts.yml):
    0 before, 1 between add and retire, 0 again; read from the tokens at each scrape."""
    metrics = CacheMetrics(SecurityEvents(logging.getLogger("test.api_tokens.gauge")))
    metrics.watch_api_tokens(lambda: tokens.previous)

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("secure_cache_api_previous_tokens")

    assert gauge() == 0
    _write(files[0], NEW)
    _write(files[1], OLD)
    assert tokens.accepts(NEW.encode())
    assert tokens.previous == 1
    assert gauge() == 1
    _write(files[1], "")
    clock.advance(INTERVAL)
    assert tokens.accepts(NEW.encode())
    assert gauge() == 0
    body, _ = metrics.render()
    for secret in (OLD, NEW, OLD[:8], NEW[:8]):
        assert secret.encode() not in body
