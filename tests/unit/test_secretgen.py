"""infra.secretgen: alphabet, length, entropy and key size of generated secrets."""

from __future__ import annotations

import base64
import math
import re
import shlex
import urllib.parse
from collections import Counter

import pytest

from infra import secretgen
from infra.profiles import PASSWORD_FLOOR


@pytest.mark.parametrize("length", sorted(PASSWORD_FLOOR.values()))
def test_password__has_the_requested_length(length: int) -> None:
    assert len(secretgen.generate_password(length)) == length


def test_password__is_safe_in_acl_urls_and_shells() -> None:
    password = secretgen.generate_password(4096)
    assert re.fullmatch(r"[A-Za-z0-9]+", password)
    assert urllib.parse.quote(password, safe="") == password
    assert shlex.quote(password) == password
    assert not set(password) & set(" #>< ~%@:/\"'$`\\")


def test_password__uses_the_whole_alphabet_roughly_uniformly() -> None:
    sample = "".join(secretgen.generate_password(1000) for _ in range(62))
    counts = Counter(sample)
    assert set(counts) == set(secretgen.PASSWORD_ALPHABET)
    expected = len(sample) / len(secretgen.PASSWORD_ALPHABET)
    # Chi-squared with 61 degrees of freedom; 130 is far beyond p=1e-6 for a uniform source.
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 130, f"password characters are not uniform (chi2={chi2:.1f})"


def test_passwords__do_not_repeat() -> None:
    assert len({secretgen.generate_password(24) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("environment", "length"), PASSWORD_FLOOR.items())
def test_password_entropy__exceeds_128_bits_at_every_floor(environment: str, length: int) -> None:
    bits = secretgen.password_entropy_bits(length)
    assert bits == pytest.approx(length * math.log2(62))
    assert bits > 128, f"{environment} passwords carry only {bits:.0f} bits"


def test_password__below_the_minimum_is_refused() -> None:
    with pytest.raises(secretgen.SecretGenError, match="at least 16, got 8"):
        secretgen.generate_password(8)


def test_data_key__is_32_random_bytes_in_base64() -> None:
    keys = {secretgen.generate_data_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 32
