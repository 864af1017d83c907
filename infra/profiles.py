"""Environment profiles: the defaults each environment starts from.

A stack file picks a profile with `secure-redis:environment` and overrides little else. Profiles
differ in strength (protocols, password length, validity, limits), never in whether a control
exists: there is one code path, and it is the secure one.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from infra.redis_acl import DEFAULT_KEY_PREFIX


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


# docs/design.md#security-model point 2: generated passwords are at least this long per environment.
PASSWORD_FLOOR: Final = MappingProxyType(
    {Environment.DEVELOPMENT: 24, Environment.STAGING: 32, Environment.PRODUCTION: 48}
)

# docs/design.md#security-model point 6: no leaf certificate is valid for longer than this many
# days per environment; a stolen key is useful at most that long (there is no revocation). The
# profiles below issue within it and the policy pack rejects anything longer.
LEAF_VALIDITY_LIMIT: Final = MappingProxyType(
    {Environment.DEVELOPMENT: 90, Environment.STAGING: 90, Environment.PRODUCTION: 30}
)

# The lowest TLS version each environment may enable, for the program (infra/settings.py) and
# the policy pack (policies/rules/_environment.py) alike. TLSv1.3 only in staging and
# production: the app's client (app/secure_cache/settings.py, Settings.min_tls_version)
# requires it there, so a server accepting 1.2 would only invite a weaker handshake no client
# of the stack may use. Development also accepts TLS 1.2 (docs/design.md, security model 1),
# with the same ECDHE+AEAD-only ciphers.
REQUIRED_TLS_MIN: Final = MappingProxyType(
    {Environment.DEVELOPMENT: "1.2", Environment.STAGING: "1.3", Environment.PRODUCTION: "1.3"}
)

# Config key (without the `secure-redis:` namespace) -> default, per environment. Every key a
# stack may set appears here, so an unknown key in a stack file is a typo, not a new setting.
_COMMON: Final = {
    "redisPort": 6380,
    "keyPrefix": DEFAULT_KEY_PREFIX,
    "dataKeyGeneration": 1,
    "dataKeyKeepPrevious": 1,
    # Raise to renew every leaf certificate on the next up (forced renewal, no clock change).
    "certRenewalGeneration": 0,
    # The block of uids the stack's containers run as (infra/runtime_ids.py); 0: dev, staging
    # and prod have their own, any other stack must set one no other stack on the host uses.
    "runtimeIdSlot": 0,
    # Raise to roll the stack's CA over (new CA trusted, then issuing, then the old one retired:
    # one step per up).
    "caRolloverGeneration": 0,
    # Raise to rotate every ACL password (new beside old, then the old one removed: two ups).
    "passwordRotationGeneration": 0,
    # Raise to rotate the app's API token (new beside old, then the old one refused: two ups).
    "apiTokenRotationGeneration": 0,
    # Raise to apiTokenRotationGeneration to retire the old API token (scripts/rotate.sh
    # api-token-retire); until then every up keeps it accepted.
    "apiTokenRetireGeneration": 0,
    "appHostPort": 8080,
}

PROFILES: Final = MappingProxyType(
    {
        Environment.DEVELOPMENT: MappingProxyType(
            {
                **_COMMON,
                "tlsMinVersion": "1.2",
                "passwordLength": PASSWORD_FLOOR[Environment.DEVELOPMENT],
                "redisMemoryMb": 477,
                "redisMaxmemoryMb": 192,
                "redisCpus": 1.0,
                "appMemoryMb": 256,
                "appCpus": 1.0,
                "keyAlgorithm": "ecdsa-p256",
                "caValidityDays": 365,
                "certValidityDays": 90,
                "certRenewBeforeDays": 30,
            }
        ),
        Environment.STAGING: MappingProxyType(
            {
                **_COMMON,
                "tlsMinVersion": "1.3",
                "passwordLength": PASSWORD_FLOOR[Environment.STAGING],
                "redisMemoryMb": 413,
                "redisMaxmemoryMb": 160,
                "redisCpus": 0.75,
                "appMemoryMb": 192,
                "appCpus": 0.75,
                "keyAlgorithm": "ecdsa-p384",
                "caValidityDays": 180,
                "certValidityDays": 45,
                "certRenewBeforeDays": 15,
            }
        ),
        Environment.PRODUCTION: MappingProxyType(
            {
                **_COMMON,
                "tlsMinVersion": "1.3",
                "passwordLength": PASSWORD_FLOOR[Environment.PRODUCTION],
                # Tighter than development: a runaway client hits the limit sooner. Every
                # profile's limit is the smallest that survives an AOF rewrite under writes
                # (infra/redis_conf.py min_memory_limit_mb: twice maxmemory plus 93).
                "redisMemoryMb": 349,
                "redisMaxmemoryMb": 128,
                "redisCpus": 0.5,
                "appMemoryMb": 160,
                "appCpus": 0.5,
                "keyAlgorithm": "ecdsa-p384",
                "caValidityDays": 180,
                "certValidityDays": 30,
                "certRenewBeforeDays": 10,
            }
        ),
    }
)

SETTING_KEYS: Final = frozenset(PROFILES[Environment.DEVELOPMENT]) | {"environment"}

__all__ = [
    "LEAF_VALIDITY_LIMIT",
    "PASSWORD_FLOOR",
    "PROFILES",
    "REQUIRED_TLS_MIN",
    "SETTING_KEYS",
    "Environment",
]
