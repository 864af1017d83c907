"""The command line the Redis container runs parses on a real redis-server.

infra/components/redis.py repeats every judged directive of redis.conf on argv (argv wins, and
policies read both). Redis joins `--name value...` into config lines of its own, so a
directive of several words (`rename-command HELLO ""`) cannot travel as one argv word: it
became `rename-command "HELLO "` and Redis refused to start (seen on a deployed dev stack).
Redis parses its whole configuration before it reads any certificate, so a parse error shows
here without the stack's files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.components.redis import redis_command
from infra.redis_conf import RedisTlsConf
from tests.support.tls_redis import REDIS_SERVER


def test_the_containers_argv__parses_as_redis_configuration(tmp_path: Path) -> None:
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")
    conf = RedisTlsConf(
        tls_port=6380,
        cert_file="/nonexistent/redis.crt",
        key_file="/nonexistent/redis.key",
        ca_cert_file="/nonexistent/ca.crt",
        acl_file="/nonexistent/users.acl",
        data_dir=str(tmp_path),  # Redis changes into it while it parses
        maxmemory_mb=200,
    )
    argv = redis_command(conf)
    assert argv[0] == "redis-server"
    empty = tmp_path / "redis.conf"
    empty.write_text("")
    # argv[1] is the config file inside the container; the rest is what Redis parses here.
    result = subprocess.run(
        [REDIS_SERVER, str(empty), *argv[2:]],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "CONFIG FILE ERROR" not in output, output[-600:]
    # It stops only at what this host lacks: the first file it needs.
    assert result.returncode != 0
    assert "/nonexistent/" in output, output[-600:]


@pytest.mark.parametrize("option", ["--port=0", "--tls-port=6380", "--requirepass=x"])
def test_an_option_written_name_equals_value__is_refused_by_redis(
    tmp_path: Path, option: str
) -> None:
    """What the pack tells a program that writes `--port=0` (policies/rules/redis.py
    _misspelled): redis-server reads it as the directive "port=0" and does not start."""
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")
    result = subprocess.run(
        [REDIS_SERVER, "--dir", str(tmp_path), option],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Bad directive or wrong number of arguments" in output, output[-600:]
    assert f"'{option[2:]}'" in output, output[-600:]
