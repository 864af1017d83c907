"""Facts the program and the app both state, pinned to each other.

The app image ships only app/ (app/Dockerfile), so the app cannot import infra; where both must
hold the same value, the two copies are compared here. (Infra and the policies share theirs by
import: infra/profiles.py, infra/pulumi_names.py, infra/proppath.py.) The policy pack's
per-environment config files are data, pinned here to the floors they restate.
"""

from __future__ import annotations

import json
import re

import pytest

from infra import redis_acl, redis_conf
from infra.profiles import PASSWORD_FLOOR, PROFILES, Environment
from policies.rules._environment import FLOORS
from policies.strictness import config_file
from secure_cache import core, service, transport
from secure_cache import settings as app_settings


def test_tls12_ciphers__the_client_offers_what_redis_accepts() -> None:
    # A suite only one side lists is never negotiated; a list only one side narrows drifts.
    assert transport.TLS12_CIPHERS.split(":") == redis_conf.TLS12_CIPHERS.split(":")


def test_environments__the_app_knows_the_programs_environments() -> None:
    assert tuple(e.value for e in Environment) == app_settings.ENVIRONMENTS


def test_password_floors__the_app_demands_what_the_program_generates() -> None:
    assert dict(app_settings.MIN_PASSWORD_LENGTH) == {
        e.value: length for e, length in PASSWORD_FLOOR.items()
    }


def test_key_prefix__the_app_and_the_acl_accept_the_same_prefixes() -> None:
    # Private names: infra/redis_acl.py and app/secure_cache/settings.py keep the pattern to
    # themselves; what matters is that a prefix one accepts, the other does too.
    acl: re.Pattern[str] = redis_acl._PREFIX_RE
    app: re.Pattern[str] = app_settings._PREFIX_RE
    assert (acl.pattern, acl.flags) == (app.pattern, app.flags)


def test_key_prefix__the_defaults_agree() -> None:
    defaults = {PROFILES[e]["keyPrefix"] for e in Environment}
    assert defaults == {redis_acl.DEFAULT_KEY_PREFIX} == {app_settings.DEFAULT_KEY_PREFIX}


@pytest.mark.parametrize("environment", list(Environment))
def test_policy_config__each_environments_file_states_its_floor(environment: Environment) -> None:
    """policies/config/*.json are data (the engine reads them): pinned to the floors here."""
    config = json.loads(config_file(environment).read_text(encoding="utf-8"))
    floor = FLOORS[environment]
    assert config["secret-password-length"]["minimumLength"] == floor.password_length
    assert config["redis-tls-protocols-modern"]["minimumVersion"] == floor.tls_minimum
    assert (
        config["tls-certificate-validity-bounded"]["maximumLeafValidityDays"]
        == floor.leaf_validity_days
    )


def test_rotation_groups__fit_the_smallest_reply_limit_a_stack_sets() -> None:
    # core.py reads and rewrites at most ROTATION_GROUP_BYTES per transaction; Redis drops a
    # client whose reply passes the output-buffer limit, which is smallest for the smallest
    # value limit (Redis's 1 MiB bulk floor). Half of it leaves room for values that grow.
    assert redis_conf.output_limit_bytes(1) >= core.ROTATION_GROUP_BYTES * 2


@pytest.mark.parametrize(
    "value_limit",
    [1, (1 << 20) - 4200, redis_conf.VALUE_LIMIT_BYTES, (5 << 20) + 7, 512 << 20],
)
def test_reply_limit__the_client_reads_every_reply_the_server_sends(value_limit: int) -> None:
    # The client refuses a reply past reply_limit_bytes; Redis drops a client whose reply
    # passes its output-buffer limit. Below it, the client would refuse what Redis sends.
    # One envelope overhead for both (redis_conf writes crypto's figure out: it must not
    # load cryptography).
    assert transport.MAX_ENVELOPE_OVERHEAD_BYTES == redis_conf.ENVELOPE_OVERHEAD_BYTES
    assert transport.reply_limit_bytes(value_limit) >= redis_conf.output_limit_bytes(value_limit)


def test_reply_limit__the_default_is_the_stack_s_and_the_service_derives_its_own() -> None:
    default = transport.DEFAULT_MAX_REPLY_BYTES
    assert default == redis_conf.output_limit_bytes()
    settings = app_settings.ServiceSettings("t" * 43, max_value_bytes=5 << 20)
    assert service.cache_options(settings)["max_reply_bytes"] == (
        redis_conf.output_limit_bytes(5 << 20)
    )


@pytest.mark.parametrize("value_limit", [1, (1 << 20) - 4200, 1 << 20, (5 << 20) + 7, 512 << 20])
def test_reply_values__16_of_the_largest_values_in_the_limit_they_give(value_limit: int) -> None:
    # get_many's MGETs read reply_values names each: 16 under the limit cache_options
    # derives, as many as the stack's Redis sends one client (output_limit_bytes), and each
    # such MGET fits the limit by construction; fewer when the limit is smaller.
    options = transport.cache_options(value_limit)
    limit = options["max_reply_bytes"]
    assert transport.reply_values(limit, value_limit) == transport.REPLY_VALUES == 16
    assert transport.reply_values(limit // 4, value_limit) == 4
    assert transport.reply_values(1 << 16, value_limit) == 1  # never none
    assert options["max_value_bytes"] == value_limit
