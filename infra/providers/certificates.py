"""Dynamic resources for the stack's PKI: a private CA and leaf certificates.

Generated once by `create` (infra/pki.py), kept in Pulumi state with the private key as a
secret output, and replaced by `pulumi up` when an input changes or the certificate is within
`renewBeforeDays` of expiry: `diff` compares the stored certificate's notAfter with the clock,
so renewal needs no schedule, only a regular `pulumi up`. Operators force a renewal without
touching the clock by raising `renewalGeneration` (stack setting `certRenewalGeneration`): any
change of it replaces the certificate. A state written before the input existed reads as 0.

The CA is never replaced: replacing it would make every certificate untrusted at once. It rolls
over in three phases instead, one per `up` (`diff` reports a change while a rollover is under
way, so the next `up` takes the next step):
- introduce (raising `rolloverGeneration`, a changed CA input, or the renewal window): a new CA
  is generated and only trusted: `trustBundlePem` holds old and new, leaves are still issued by
  the old one (`certPem`/`keyPem` name the CA that issues);
- promote: the new CA issues (`certPem` changes, so every leaf is reissued by it); both are
  still trusted, so old and new leaves work side by side while consumers switch;
- retire: the old CA leaves the bundle; nothing presents a certificate it signed any more.

One leaf keeps what the promote replaced: the reload job's (`LeafCertificate(...,
keep_previous_while=bundle)`). A promote whose introduce never reached Redis (its TLS reload
failed: Redis at maxclients, the job interrupted) finds a Redis that trusts only the old CA,
and the job reloads it with that certificate (infra/components/reload.py). The promote reissues
such a leaf in place and keeps the certificate and key it replaced as `previousCertPem` and
`previousKeyPem`, for as long as the trust bundle holds their CA, i.e. until the retire step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from infra import pki
from infra.providers._common import (
    as_int,
    as_str_list,
    changed,
    inputs_only,
    new_revision,
)

Clock = Callable[[], dt.datetime]
SECRET_OUTPUTS: Final = ["keyPem"]
CA_SECRET_OUTPUTS: Final = ["keyPem", "nextKeyPem"]
KEEPING_SECRET_OUTPUTS: Final = ["keyPem", "previousKeyPem"]
_OUTPUT_KEYS: Final = ("certPem", "keyPem", "notAfter", "revision")
_PREVIOUS_KEYS: Final = ("previousCertPem", "previousKeyPem")
# The inputs naming the CA that issues a leaf; only a CA promote changes them.
ISSUER_KEYS: Final = ("caCertPem", "caKeyPem")
TRUST_BUNDLE: Final = "trustBundlePem"
_CA_OUTPUT_KEYS: Final = (
    *_OUTPUT_KEYS,
    "trustBundlePem",
    "phase",
    "nextCertPem",
    "nextKeyPem",
    "previousCertPem",
)
ROLLOVER_GENERATION: Final = "rolloverGeneration"
_USAGES: Final = ("server", "client")
RENEWAL_GENERATION: Final = "renewalGeneration"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _CertificateProvider(ResourceProvider):
    """Common lifecycle: replace on input change or renewal window, update nothing else."""

    # Inputs whose change needs a new certificate; every other input is updated in place.
    REPLACE_KEYS: ClassVar[tuple[str, ...]] = ()
    INPUT_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self._clock = clock

    def now(self) -> dt.datetime:
        return self._clock() if self._clock else _utcnow()

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        normalized = dict(news)
        try:
            normalized["keyAlgorithm"] = pki.KeyAlgorithm(str(news.get("keyAlgorithm"))).value
        except ValueError:
            choices = ", ".join(a.value for a in pki.KeyAlgorithm)
            failures.append(CheckFailure("keyAlgorithm", f"keyAlgorithm must be one of {choices}"))
        validity = as_int(news, "validityDays", failures, minimum=1)
        renew = as_int(news, "renewBeforeDays", failures, minimum=0)
        if validity is not None and renew is not None:
            normalized["validityDays"], normalized["renewBeforeDays"] = validity, renew
            if renew >= validity:
                failures.append(
                    CheckFailure(
                        "renewBeforeDays",
                        "renewBeforeDays must be below validityDays, or every update renews",
                    )
                )
        generation = as_int(
            {RENEWAL_GENERATION: 0, **news}, RENEWAL_GENERATION, failures, minimum=0
        )
        normalized[RENEWAL_GENERATION] = generation if generation is not None else 0
        if not str(news.get("commonName") or "").strip():
            failures.append(CheckFailure("commonName", "commonName must not be empty"))
        failures.extend(self._check_more(news, normalized))
        return CheckResult(normalized, failures)

    def _check_more(self, _news: dict[str, Any], _normalized: dict[str, Any]) -> list[CheckFailure]:
        return []

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed(olds, news, self.REPLACE_KEYS)
        if _renewal_generation(olds) != _renewal_generation(news):
            replaces.append(RENEWAL_GENERATION)
        reissued_by_update = self.reissues_in_place(olds, news)
        if not replaces and not reissued_by_update and self.due_for_renewal(olds, news):
            replaces = ["certPem"]
        updates = changed(olds, news, self.INPUT_KEYS)
        # Create the new certificate before deleting the old one: consumers switch over first.
        return DiffResult(
            changes=bool(replaces or updates), replaces=replaces, delete_before_replace=False
        )

    def reissues_in_place(self, _olds: dict[str, Any], _news: dict[str, Any]) -> bool:
        """True when `update` issues the new certificate itself (no replacement needed)."""
        return False

    def due_for_renewal(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        cert_pem = olds.get("certPem")
        if not cert_pem:
            return True
        renew_before = int(news.get("renewBeforeDays", olds.get("renewBeforeDays", 0)))
        return pki.needs_renewal(
            str(cert_pem).encode(), renew_before_days=renew_before, now=self.now()
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {
            **inputs_only(props, (*self.INPUT_KEYS, RENEWAL_GENERATION)),
            **_issued_outputs(self._issue(props)),
        }
        return CreateResult(outs["revision"], outs)

    def _issue(self, props: dict[str, Any]) -> pki.CertifiedKey:
        raise NotImplementedError

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing lives outside the state: what the state holds is the resource.
        return ReadResult(id_, props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only non-replacing inputs (renewBeforeDays) reach here; the material stays the same.
        return UpdateResult({**olds, **inputs_only(news, self.INPUT_KEYS)})


def _issued_outputs(certified: pki.CertifiedKey) -> dict[str, str]:
    """The outputs of newly issued material (`_OUTPUT_KEYS`); a new revision, so its consumers
    are replaced with it."""
    return {
        "certPem": certified.cert_pem.decode(),
        "keyPem": certified.key_pem.decode(),
        "notAfter": pki.certificate_expiry(certified.cert_pem).isoformat(),
        "revision": new_revision(),
    }


def _renewal_generation(props: dict[str, Any]) -> int:
    return int(props.get(RENEWAL_GENERATION) or 0)


class CaPhase(StrEnum):
    STEADY = "steady"
    INTRODUCED = "introduced"
    PROMOTED = "promoted"


class CertificateAuthorityProvider(_CertificateProvider):
    # Inputs whose change makes a new CA; it rolls over (see the module docstring).
    ROLLOVER_KEYS = ("commonName", "keyAlgorithm", "validityDays")
    INPUT_KEYS = (*ROLLOVER_KEYS, "renewBeforeDays", ROLLOVER_GENERATION)

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checked = super().check(olds, news)
        failures = list(checked.failures or [])
        generation = as_int(
            {ROLLOVER_GENERATION: 0, **news}, ROLLOVER_GENERATION, failures, minimum=0
        )
        inputs = {**(checked.inputs or {}), ROLLOVER_GENERATION: generation or 0}
        inputs.pop(RENEWAL_GENERATION, None)  # leaves renew on it; the CA rolls over instead
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Never a replacement. A rollover under way is a change: this `up` takes its next step.
        changes = (
            ca_phase(olds) is not CaPhase.STEADY
            or self.rollover_requested(olds, news)
            or bool(_changed_inputs(olds, news, self.INPUT_KEYS))
        )
        return DiffResult(changes=changes, replaces=[])

    def rollover_requested(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        keys = (*self.ROLLOVER_KEYS, ROLLOVER_GENERATION)
        return bool(_changed_inputs(olds, news, keys)) or self.due_for_renewal(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        certified = self._issue(props)
        outs = {
            **inputs_only(props, self.INPUT_KEYS),
            **_ca_outputs(issuing=certified, trusted=(certified.cert_pem,), phase=CaPhase.STEADY),
        }
        return CreateResult(str(outs["revision"]), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = inputs_only(news, self.INPUT_KEYS)
        issuing = pki.CertifiedKey(str(olds["certPem"]).encode(), str(olds["keyPem"]).encode())
        match ca_phase(olds):
            case CaPhase.INTRODUCED:
                new = pki.CertifiedKey(
                    str(olds["nextCertPem"]).encode(), str(olds["nextKeyPem"]).encode()
                )
                trusted = (new.cert_pem, issuing.cert_pem)
                outs = _ca_outputs(
                    issuing=new, trusted=trusted, phase=CaPhase.PROMOTED, previous=issuing
                )
            case CaPhase.PROMOTED:
                outs = _ca_outputs(
                    issuing=issuing, trusted=(issuing.cert_pem,), phase=CaPhase.STEADY
                )
            case CaPhase.STEADY if self.rollover_requested(olds, news):
                new = self._issue(news)
                trusted = (issuing.cert_pem, new.cert_pem)
                outs = _ca_outputs(
                    issuing=issuing, trusted=trusted, phase=CaPhase.INTRODUCED, next_ca=new
                )
            case _:
                # Only renewBeforeDays changed: the material stays, and so does its revision.
                return UpdateResult({**olds, **inputs})
        return UpdateResult({**inputs, **outs})

    def _issue(self, props: dict[str, Any]) -> pki.CertifiedKey:
        return pki.create_ca(
            str(props["commonName"]),
            algorithm=str(props["keyAlgorithm"]),
            validity_days=int(props["validityDays"]),
            now=self.now(),
        )


def _changed_inputs(olds: dict[str, Any], news: dict[str, Any], keys: Sequence[str]) -> list[str]:
    # A state written before the rollover input existed reads as generation 0.
    defaults = {ROLLOVER_GENERATION: 0}
    return changed({**defaults, **olds}, {**defaults, **news}, keys)


def ca_phase(props: dict[str, Any]) -> CaPhase:
    """The phase a CA's state is in; a state from before rollovers existed is steady."""
    return CaPhase(props.get("phase") or CaPhase.STEADY.value)


def _ca_outputs(
    *,
    issuing: pki.CertifiedKey,
    trusted: Sequence[bytes],
    phase: CaPhase,
    next_ca: pki.CertifiedKey | None = None,
    previous: pki.CertifiedKey | None = None,
) -> dict[str, Any]:
    return {
        **_issued_outputs(issuing),
        "trustBundlePem": pki.trust_bundle(trusted).decode(),
        "phase": phase.value,
        "nextCertPem": next_ca.cert_pem.decode() if next_ca else "",
        "nextKeyPem": next_ca.key_pem.decode() if next_ca else "",
        "previousCertPem": previous.cert_pem.decode() if previous else "",
    }


class LeafCertificateProvider(_CertificateProvider):
    REPLACE_KEYS: ClassVar[tuple[str, ...]] = (
        "caCertPem",
        "caKeyPem",
        "commonName",
        "usage",
        "dnsNames",
        "ipAddresses",
        "keyAlgorithm",
        "validityDays",
    )
    INPUT_KEYS: ClassVar[tuple[str, ...]] = (*REPLACE_KEYS, "renewBeforeDays")

    def _check_more(self, news: dict[str, Any], normalized: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        if news.get("usage") not in _USAGES:
            failures.append(CheckFailure("usage", f"usage must be one of {', '.join(_USAGES)}"))
        normalized["dnsNames"] = as_str_list(news, "dnsNames", failures)
        normalized["ipAddresses"] = as_str_list(news, "ipAddresses", failures)
        if news.get("usage") == "server" and not (
            normalized["dnsNames"] or normalized["ipAddresses"]
        ):
            failures.append(CheckFailure("dnsNames", "a server certificate needs a DNS name or IP"))
        return failures

    def _issue(self, props: dict[str, Any]) -> pki.CertifiedKey:
        ca = pki.CertifiedKey(str(props["caCertPem"]).encode(), str(props["caKeyPem"]).encode())
        if props["usage"] == "server":
            return pki.issue_server_certificate(
                ca,
                str(props["commonName"]),
                dns_names=list(props.get("dnsNames") or []),
                ip_addresses=list(props.get("ipAddresses") or []),
                algorithm=str(props["keyAlgorithm"]),
                validity_days=int(props["validityDays"]),
                now=self.now(),
            )
        return pki.issue_client_certificate(
            ca,
            str(props["commonName"]),
            algorithm=str(props["keyAlgorithm"]),
            validity_days=int(props["validityDays"]),
            now=self.now(),
        )


class KeepingLeafCertificateProvider(LeafCertificateProvider):
    """A leaf whose new issuer (a CA promote) reissues it in place, keeping the certificate and
    key it replaced while `trustBundlePem` still holds their CA (the module docstring says why).
    Any other change is what it is for every leaf; a replacement keeps nothing."""

    REPLACE_KEYS = tuple(k for k in LeafCertificateProvider.REPLACE_KEYS if k not in ISSUER_KEYS)
    INPUT_KEYS = (*LeafCertificateProvider.INPUT_KEYS, TRUST_BUNDLE)

    def reissues_in_place(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        return bool(changed(olds, news, ISSUER_KEYS))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A renewal raised in the same up as a promote is the promote's reissue: replaced, it
        kept nothing, and the job's second try had no certificate of the old CA left while
        Redis still trusted only that one (an introduce interrupted before its reload, then
        `rotate.sh S certs`: walkthrough of 2026-12-06, Redis unverifiable by the app)."""
        result = super().diff(_id, olds, news)
        if not self.reissues_in_place(olds, news):
            return result
        replaces = [r for r in result.replaces or [] if r != RENEWAL_GENERATION]
        return DiffResult(changes=result.changes, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        created = super().create(props)
        return CreateResult(
            created.id, {**(created.outs or {}), **dict.fromkeys(_PREVIOUS_KEYS, "")}
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = inputs_only(news, self.INPUT_KEYS)
        bundle = str(news.get(TRUST_BUNDLE) or "").encode()
        if self.reissues_in_place(olds, news):
            # A renewal taken with it (diff) is recorded, or the next up would replace the leaf.
            inputs[RENEWAL_GENERATION] = _renewal_generation(news)
            outs = {
                **olds,
                **inputs,
                **_issued_outputs(self._issue(news)),
                **self._kept(str(olds["certPem"]), str(olds["keyPem"]), bundle),
            }
            return UpdateResult(outs)
        before = {k: str(olds.get(k) or "") for k in _PREVIOUS_KEYS}
        kept = self._kept(before["previousCertPem"], before["previousKeyPem"], bundle)
        # Dropping the previous pair changes the material (a file of the consumer's volume).
        revision = olds["revision"] if kept == before else new_revision()
        return UpdateResult({**olds, **inputs, **kept, "revision": revision})

    def _kept(self, cert_pem: str, key_pem: str, bundle: bytes) -> dict[str, str]:
        """The pair as `previous*` outputs while a CA of `bundle` vouches for the certificate
        (signed by it, both valid now); empty outputs otherwise."""
        if cert_pem and bundle and pki.issued_by_one_of(cert_pem.encode(), bundle, now=self.now()):
            return {"previousCertPem": cert_pem, "previousKeyPem": key_pem}
        return dict.fromkeys(_PREVIOUS_KEYS, "")


def _secret_outputs(
    opts: pulumi.ResourceOptions | None, names: list[str] = SECRET_OUTPUTS
) -> pulumi.ResourceOptions:
    # The provider cannot mark outputs secret itself (dynamic providers do not accept secrets);
    # the engine does it for the names listed here, so the key is encrypted in state.
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=names)
    )


class CertificateAuthority(Resource, module="secure-redis", name="CertificateAuthority"):
    """The stack's own CA (path length 0). `certPem`/`keyPem` are the CA that issues now;
    `trustBundlePem` is every CA consumers must trust (two during a rollover). The keys are
    secret; they never leave the state."""

    certPem: pulumi.Output[str]
    keyPem: pulumi.Output[str]
    notAfter: pulumi.Output[str]
    revision: pulumi.Output[str]
    trustBundlePem: pulumi.Output[str]
    phase: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        common_name: str,
        key_algorithm: str,
        validity_days: int,
        renew_before_days: int,
        rollover_generation: int = 0,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "commonName": common_name,
            "keyAlgorithm": key_algorithm,
            "validityDays": validity_days,
            "renewBeforeDays": renew_before_days,
            ROLLOVER_GENERATION: rollover_generation,
            **dict.fromkeys(_CA_OUTPUT_KEYS),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=CA_SECRET_OUTPUTS)
        super().__init__(
            CertificateAuthorityProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )


class LeafCertificate(Resource, module="secure-redis", name="LeafCertificate"):
    """A serverAuth or clientAuth certificate signed by the stack's CA. `keyPem` is secret.

    `keep_previous_while` (the trust bundle) makes a CA promote reissue it in place and keep
    the pair it replaced as `previousCertPem`/`previousKeyPem` (secret) while the bundle holds
    their CA; without it those outputs do not exist."""

    certPem: pulumi.Output[str]
    keyPem: pulumi.Output[str]
    notAfter: pulumi.Output[str]
    revision: pulumi.Output[str]
    previousCertPem: pulumi.Output[str]
    previousKeyPem: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        ca: CertificateAuthority,
        common_name: str,
        usage: str,
        key_algorithm: str,
        validity_days: int,
        renew_before_days: int,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        renewal_generation: int = 0,
        keep_previous_while: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "caCertPem": ca.certPem,
            "caKeyPem": ca.keyPem,
            "commonName": common_name,
            "usage": usage,
            "dnsNames": list(dns_names),
            "ipAddresses": list(ip_addresses),
            "keyAlgorithm": key_algorithm,
            "validityDays": validity_days,
            "renewBeforeDays": renew_before_days,
            RENEWAL_GENERATION: renewal_generation,
            **dict.fromkeys(_OUTPUT_KEYS),
        }
        if keep_previous_while is None:
            super().__init__(LeafCertificateProvider(), name, props, _secret_outputs(opts))
            return
        props |= {TRUST_BUNDLE: keep_previous_while, **dict.fromkeys(_PREVIOUS_KEYS)}
        super().__init__(
            KeepingLeafCertificateProvider(),
            name,
            props,
            _secret_outputs(opts, KEEPING_SECRET_OUTPUTS),
        )


__all__ = [
    "CA_SECRET_OUTPUTS",
    "KEEPING_SECRET_OUTPUTS",
    "ROLLOVER_GENERATION",
    "CaPhase",
    "CertificateAuthority",
    "CertificateAuthorityProvider",
    "KeepingLeafCertificateProvider",
    "LeafCertificate",
    "LeafCertificateProvider",
    "ca_phase",
]
