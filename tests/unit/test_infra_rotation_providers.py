"""Rotation phases of the dynamic providers, driven the way the engine drives them: each `up`
is check -> diff against the previous outputs -> update (or nothing), never a replacement."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from infra import pki
from infra.providers._common import ChangeRefused
from infra.providers.certificates import (
    CaPhase,
    CertificateAuthorityProvider,
    KeepingLeafCertificateProvider,
    LeafCertificateProvider,
)
from infra.providers.secrets import DataKeyringProvider, GeneratedPasswordProvider
from infra.redis_acl import password_hash

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
CA_INPUTS: dict[str, Any] = {
    "commonName": "test CA",
    "keyAlgorithm": "ecdsa-p256",
    "validityDays": 365,
    "renewBeforeDays": 90,
    "rolloverGeneration": 0,
}


def _clock(moment: dt.datetime) -> Any:
    return lambda: moment


def up(provider: Any, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    """One `up` of an existing resource: check, diff, and update when diff says so."""
    checked = provider.check(olds, news)
    assert not checked.failures, checked.failures
    diff = provider.diff("id", olds, checked.inputs)
    assert not diff.replaces, f"{type(provider).__name__} must never be replaced"
    if not diff.changes:
        return olds
    return dict(provider.update("id", olds, checked.inputs).outs or {})


# --- passwords: ROTATE, then SET -------------------------------------------------------------


def _password(generation: int = 0, *, keep_retired: bool = False) -> dict[str, Any]:
    return {"length": 24, "rotationGeneration": generation, "keepRetired": keep_retired}


def test_password__unchanged_up_keeps_everything() -> None:
    provider = GeneratedPasswordProvider()
    first = dict(provider.create(provider.check({}, _password()).inputs).outs or {})
    assert up(provider, first, _password()) is first
    assert first["phase"] == "steady"
    assert first["aclHashes"] == [first["aclHash"]]
    assert first["stable"] == first["value"]


def test_password__rotation_adds_the_new_beside_the_old_then_the_next_up_drops_the_old() -> None:
    provider = GeneratedPasswordProvider()
    first = dict(provider.create(provider.check({}, _password()).inputs).outs or {})

    rotating = up(provider, first, _password(1))
    assert rotating["value"] != first["value"]
    assert rotating["previous"] == first["value"]
    assert rotating["aclHashes"] == [password_hash(rotating["value"]), first["aclHash"]]
    assert rotating["stable"] == first["value"], "valid before and after the ACL reload"
    assert rotating["phase"] == "rotating"
    assert rotating["revision"] != first["revision"]

    done = up(provider, rotating, _password(1))  # the next up, nothing changed in config
    assert done["value"] == rotating["value"]
    assert done["previous"] == ""
    assert done["aclHashes"] == [password_hash(done["value"])]
    assert done["stable"] == done["value"]
    assert done["phase"] == "steady"
    assert up(provider, done, _password(1)) is done, "and then it stays"


def test_password__set_keeps_the_dropped_password_as_retired_until_the_next_set() -> None:
    """The reload job's second try (infra/components/reload.py): a SET is recorded even when
    the ROTATE before it never reached Redis, which then still accepts only the old one."""
    provider = GeneratedPasswordProvider()
    keep = {"keep_retired": True}  # the reload job's password (infra/components/secrets.py)
    first = dict(provider.create(provider.check({}, _password(**keep)).inputs).outs or {})
    assert first["retired"] == ""
    rotating = up(provider, first, _password(1, **keep))
    assert rotating["retired"] == ""
    done = up(provider, rotating, _password(1, **keep))
    assert done["retired"] == first["value"]
    assert done["aclHashes"] == [password_hash(done["value"])], "never accepted by the ACL"
    again = up(provider, done, _password(2, **keep))  # the next ROTATE carries it
    assert again["retired"] == first["value"]
    assert up(provider, again, _password(2, **keep))["retired"] == done["value"]


def test_password__without_keep_retired_the_set_forgets_the_dropped_password() -> None:
    """Every password but the reload job's, and the API token: nothing reads `retired`, so the
    value a SET drops is gone from the state with it (attack pass of 2026-12-03 on s87: every
    retired password and the retired API token were still in the applier's state)."""
    provider = GeneratedPasswordProvider()
    first = dict(provider.create(provider.check({}, _password()).inputs).outs or {})
    rotating = up(provider, first, _password(1))
    done = up(provider, rotating, _password(1))
    assert done["previous"] == ""
    assert done["retired"] == ""
    assert first["value"] not in json.dumps(done)
    again = up(provider, up(provider, done, _password(2)), _password(2))
    assert rotating["value"] not in json.dumps(again)
    assert again["retired"] == ""


def test_password__a_retired_value_kept_before_keep_retired_is_forgotten_by_the_next_up() -> None:
    """A state written by the code before (every password kept its retired value): the next
    up forgets it and changes nothing else, so no file and no ACL changes with it."""
    provider = GeneratedPasswordProvider()
    first = dict(provider.create(provider.check({}, _password()).inputs).outs or {})
    old_state = {**first, "retired": "r" * 24}
    old_state.pop("keepRetired", None)
    cleaned = up(provider, old_state, _password())
    assert cleaned is not old_state, "the up must report the change"
    assert cleaned["retired"] == ""
    assert {k: v for k, v in cleaned.items() if k not in ("retired", "keepRetired")} == {
        k: v for k, v in old_state.items() if k != "retired"
    }
    assert up(provider, cleaned, _password()) is cleaned, "and then it stays"
    kept = {**first, "retired": "r" * 24, "keepRetired": True}
    assert up(provider, kept, _password(keep_retired=True)) is kept, "the reload job's stays"


def test_password__a_state_from_before_rotation_existed_is_kept() -> None:
    provider = GeneratedPasswordProvider()
    old_state = {"length": 24, "value": "a" * 24, "aclHash": password_hash("a" * 24)}
    assert up(provider, old_state, {"length": 24}) is old_state


# --- CA: introduce, promote, retire --------------------------------------------------------


def _ca(generation: int = 0) -> dict[str, Any]:
    return {**CA_INPUTS, "rolloverGeneration": generation}


def _bundle(state: dict[str, Any]) -> list[int]:
    return [c.serial_number for c in pki.split_bundle(state["trustBundlePem"].encode())]


def _serial(pem: str) -> int:
    return pki.load_certificate(pem.encode()).serial_number


@pytest.fixture
def ca() -> CertificateAuthorityProvider:
    return CertificateAuthorityProvider(_clock(NOW))


def test_ca__unchanged_up_keeps_it(ca: CertificateAuthorityProvider) -> None:
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    assert up(ca, first, _ca()) is first
    assert _bundle(first) == [_serial(first["certPem"])]


def test_ca__rollover_trusts_the_new_ca_before_it_issues_and_drops_the_old_after(
    ca: CertificateAuthorityProvider,
) -> None:
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    old = _serial(first["certPem"])

    introduced = up(ca, first, _ca(1))
    new = _serial(introduced["nextCertPem"])
    assert introduced["phase"] == CaPhase.INTRODUCED
    assert _serial(introduced["certPem"]) == old, "the old CA still issues"
    assert introduced["keyPem"] == first["keyPem"]
    assert _bundle(introduced) == [old, new], "both are trusted before the new one issues"

    promoted = up(ca, introduced, _ca(1))
    assert promoted["phase"] == CaPhase.PROMOTED
    assert _serial(promoted["certPem"]) == new, "the new CA issues"
    assert promoted["keyPem"] == introduced["nextKeyPem"]
    assert sorted(_bundle(promoted)) == sorted([old, new]), "old leaves still work"

    retired = up(ca, promoted, _ca(1))
    assert retired["phase"] == CaPhase.STEADY
    assert _bundle(retired) == [new]
    assert up(ca, retired, _ca(1)) is retired


def test_ca__renewal_window_starts_a_rollover_not_a_replacement() -> None:
    provider = CertificateAuthorityProvider(_clock(NOW))
    first = dict(provider.create(provider.check({}, _ca()).inputs).outs or {})
    later = CertificateAuthorityProvider(_clock(NOW + dt.timedelta(days=300)))
    introduced = up(later, first, _ca())
    assert introduced["phase"] == CaPhase.INTRODUCED
    assert len(_bundle(introduced)) == 2


_LEAF: dict[str, Any] = {
    "commonName": "reload",
    "usage": "client",
    "dnsNames": [],
    "ipAddresses": [],
    "keyAlgorithm": "ecdsa-p256",
    "validityDays": 30,
    "renewBeforeDays": 10,
}


def test_ca__leaves_are_reissued_only_when_the_new_ca_issues(
    ca: CertificateAuthorityProvider,
) -> None:
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    leaf_inputs = {**_LEAF, "commonName": "app"}
    leaves = LeafCertificateProvider(_clock(NOW))

    def leaf_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        olds_in = {**leaf_inputs, "caCertPem": before["certPem"], "caKeyPem": before["keyPem"]}
        olds = dict(leaves.create(leaves.check({}, olds_in).inputs).outs or {})
        news = {**leaf_inputs, "caCertPem": after["certPem"], "caKeyPem": after["keyPem"]}
        return list(leaves.diff("id", olds, leaves.check(olds, news).inputs).replaces or [])

    introduced = up(ca, first, _ca(1))
    assert leaf_diff(first, introduced) == [], "introducing a CA reissues nothing"
    promoted = up(ca, introduced, _ca(1))
    assert "caCertPem" in leaf_diff(introduced, promoted), "promotion reissues every leaf"
    retired = up(ca, promoted, _ca(1))
    assert leaf_diff(promoted, retired) == [], "retiring the old CA reissues nothing"


def _keeping_inputs(ca_state: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        **_LEAF,
        "caCertPem": ca_state["certPem"],
        "caKeyPem": ca_state["keyPem"],
        "trustBundlePem": ca_state["trustBundlePem"],
        **more,
    }


def test_keeping_leaf__a_promote_reissues_in_place_and_keeps_the_old_pair_until_the_retire(
    ca: CertificateAuthorityProvider,
) -> None:
    """The reload job's certificate (infra/components/tls.py): what the promote replaced is
    its second try while Redis may still trust only the old CA (infra/components/reload.py)."""
    leaf = KeepingLeafCertificateProvider(_clock(NOW))
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    issued = dict(leaf.create(leaf.check({}, _keeping_inputs(first)).inputs).outs or {})
    assert (issued["previousCertPem"], issued["previousKeyPem"]) == ("", "")

    introduced = up(ca, first, _ca(1))
    after_introduce = up(leaf, issued, _keeping_inputs(introduced))
    assert after_introduce["certPem"] == issued["certPem"], "introducing a CA reissues nothing"
    assert after_introduce["previousCertPem"] == ""
    assert after_introduce["revision"] == issued["revision"], "no material changed"

    promoted = up(ca, introduced, _ca(1))
    after_promote = up(leaf, after_introduce, _keeping_inputs(promoted))  # never a replacement
    new_cert = after_promote["certPem"].encode()
    assert pki.verify_chain(new_cert, promoted["certPem"].encode(), now=NOW), "the new CA issued"
    assert pki.key_matches_certificate(new_cert, after_promote["keyPem"].encode())
    assert after_promote["previousCertPem"] == issued["certPem"]
    assert after_promote["previousKeyPem"] == issued["keyPem"]
    assert after_promote["revision"] != after_introduce["revision"]

    retired = up(ca, promoted, _ca(1))
    after_retire = up(leaf, after_promote, _keeping_inputs(retired))
    assert after_retire["certPem"] == after_promote["certPem"]
    assert (after_retire["previousCertPem"], after_retire["previousKeyPem"]) == ("", "")
    assert after_retire["revision"] != after_promote["revision"], "the volume loses a key"
    assert up(leaf, after_retire, _keeping_inputs(retired)) is after_retire


def test_keeping_leaf__keeps_nothing_its_bundle_does_not_vouch_for(
    ca: CertificateAuthorityProvider,
) -> None:
    """A new issuer whose bundle lacks the old CA (not a rollover's promote) keeps nothing."""
    leaf = KeepingLeafCertificateProvider(_clock(NOW))
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    issued = dict(leaf.create(leaf.check({}, _keeping_inputs(first)).inputs).outs or {})
    other = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    moved = up(leaf, issued, _keeping_inputs(other))
    assert moved["certPem"] != issued["certPem"]
    assert (moved["previousCertPem"], moved["previousKeyPem"]) == ("", "")


def test_keeping_leaf__a_renewal_in_the_promotes_up_is_its_reissue_and_keeps_the_old_pair(
    ca: CertificateAuthorityProvider,
) -> None:
    """An introduce interrupted before its reload, then `rotate.sh S certs`: the renewal
    replaced the leaf, the promote's kept pair was lost, and the reload job could not reach a
    Redis that trusted only the old CA (walkthrough of 2026-12-06)."""
    leaf = KeepingLeafCertificateProvider(_clock(NOW))
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    issued = dict(leaf.create(leaf.check({}, _keeping_inputs(first)).inputs).outs or {})
    introduced = up(ca, first, _ca(1))
    after_introduce = up(leaf, issued, _keeping_inputs(introduced))
    promoted = up(ca, introduced, _ca(1))
    renewed = up(leaf, after_introduce, _keeping_inputs(promoted, renewalGeneration=1))
    assert pki.verify_chain(renewed["certPem"].encode(), promoted["certPem"].encode(), now=NOW)
    assert renewed["previousCertPem"] == issued["certPem"], "the old CA's pair is kept"
    assert renewed["renewalGeneration"] == 1
    assert up(leaf, renewed, _keeping_inputs(promoted, renewalGeneration=1)) is renewed


def test_keeping_leaf__renewal_replaces_it_as_any_leaf(ca: CertificateAuthorityProvider) -> None:
    leaf = KeepingLeafCertificateProvider(_clock(NOW))
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    issued = dict(leaf.create(leaf.check({}, _keeping_inputs(first)).inputs).outs or {})
    news = leaf.check(issued, _keeping_inputs(first, renewalGeneration=1)).inputs
    assert leaf.diff("id", issued, news).replaces == ["renewalGeneration"]
    later = KeepingLeafCertificateProvider(_clock(NOW + dt.timedelta(days=25)))
    assert later.diff("id", issued, _keeping_inputs(first)).replaces == ["certPem"]


def test_keeping_leaf__a_state_from_before_it_kept_anything_updates_with_the_same_material(
    ca: CertificateAuthorityProvider,
) -> None:
    """The reload leaf of a deployed stack was a plain leaf: its first up with the bundle as
    an input changes no certificate and no revision."""
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    plain = LeafCertificateProvider(_clock(NOW))
    inputs = {k: v for k, v in _keeping_inputs(first).items() if k != "trustBundlePem"}
    legacy = dict(plain.create(plain.check({}, inputs).inputs).outs or {})
    leaf = KeepingLeafCertificateProvider(_clock(NOW))
    updated = up(leaf, legacy, _keeping_inputs(first))
    assert updated["certPem"] == legacy["certPem"]
    assert updated["revision"] == legacy["revision"]
    assert (updated["previousCertPem"], updated["previousKeyPem"]) == ("", "")


def test_ca__renew_before_days_alone_updates_in_place_with_the_same_material(
    ca: CertificateAuthorityProvider,
) -> None:
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    updated = up(ca, first, {**_ca(), "renewBeforeDays": 60})
    assert updated["certPem"] == first["certPem"]
    assert updated["revision"] == first["revision"]
    assert updated["renewBeforeDays"] == 60


def test_ca__a_state_from_before_rollovers_existed_is_steady(
    ca: CertificateAuthorityProvider,
) -> None:
    first = dict(ca.create(ca.check({}, _ca()).inputs).outs or {})
    legacy = {
        k: v
        for k, v in first.items()
        if k not in ("phase", "trustBundlePem", "nextCertPem", "nextKeyPem", "rolloverGeneration")
    }
    assert up(ca, legacy, {k: v for k, v in _ca().items() if k != "rolloverGeneration"}) is legacy


# --- data keys ------------------------------------------------------------------------------


def test_keyring__retiring_and_restoring_keep_previous_rewrites_nothing_twice() -> None:
    provider = DataKeyringProvider()
    first = dict(provider.create({"generation": 1, "keepPrevious": 1}).outs or {})
    rotated = up(provider, first, {"generation": 2, "keepPrevious": 1})
    assert rotated["previousKeys"] == first["primaryKey"]
    retired = up(provider, rotated, {"generation": 2, "keepPrevious": 0})
    assert retired["previousKeys"] == ""
    assert retired["primaryKey"] == rotated["primaryKey"]
    restored = up(provider, retired, {"generation": 2, "keepPrevious": 1})
    assert restored["revision"] == retired["revision"], "same keys, same files: no rewrite"


def _refusal(olds: dict[str, Any], news: dict[str, Any]) -> str:
    provider = DataKeyringProvider()
    checked = provider.check(olds, news)
    assert not checked.failures, checked.failures
    with pytest.raises(ChangeRefused) as refused:
        provider.diff("id", olds, checked.inputs)
    return str(refused.value)


def test_keyring__a_raise_that_would_retire_a_key_still_read_is_refused() -> None:
    """dataKeyGeneration raised again while the previous key is still read (the rotation pass
    not run, or the old key not retired): the update would keep one previous key, the newer,
    and the entries still sealed with the older would be lost. Refused, with the way on."""
    provider = DataKeyringProvider()
    first = dict(provider.create({"generation": 1, "keepPrevious": 1}).outs or {})
    rotated = up(provider, first, {"generation": 2, "keepPrevious": 1})
    said = _refusal(rotated, {"generation": 3, "keepPrevious": 1})
    for words in ("dataKeyKeepPrevious to 2", "rotate.sh", "back to 2", "nothing was changed"):
        assert words in said, said
    for key in (first["primaryKey"], rotated["primaryKey"]):
        assert key not in said
    # Kept readable when asked: two previous keys.
    both = up(provider, rotated, {"generation": 3, "keepPrevious": 2})
    assert both["previousKeys"].split(",") == [rotated["primaryKey"], first["primaryKey"]]


def test_keyring__a_raise_with_keep_previous_zero_is_refused_the_retire_is_its_own_up() -> None:
    """A raise that keeps no previous key makes every cached entry unreadable at once; the
    retire (keepPrevious 0 on its own, after the rotation pass) stays allowed."""
    provider = DataKeyringProvider()
    first = dict(provider.create({"generation": 1, "keepPrevious": 1}).outs or {})
    assert "dataKeyKeepPrevious to 1" in _refusal(first, {"generation": 2, "keepPrevious": 0})
    rotated = up(provider, first, {"generation": 2, "keepPrevious": 1})
    retired = up(provider, rotated, {"generation": 2, "keepPrevious": 0})
    assert retired["previousKeys"] == ""
    again = up(provider, retired, {"generation": 3, "keepPrevious": 1})
    assert again["previousKeys"] == rotated["primaryKey"]
