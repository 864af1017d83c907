"""Rotation in place against a real TLS redis-server, with the stack's own scripts.

The material is written by the initialiser's script and reloaded by the reload job's script
(tests/support/rotating_redis.py), so these tests exercise what a deployed stack runs:
- CONFIG SET of the TLS files reloads certificate, key and CA bundle (redis/redis#8756): new
  connections get the new certificate, an established connection stays up;
- ACL LOAD with two password hashes accepts both, and after the next step only the new one;
- the reload identity may run CONFIG SET and ACL LOAD and nothing else;
- a CA rollover (bundle of old and new) accepts clients of both CAs, then only the new one.
Each test first shows the state before the reload, so it fails if the reload does nothing.
"""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.retry import Retry

from infra import pki
from infra.components.reload import (
    REFUSED_AT_HANDSHAKE,
    RELOAD_ACL_WORDS,
    reload_script,
    tls_reload_command,
)
from infra.redis_acl import APP_USER, RELOAD_USER
from infra.redis_conf import render_redis_conf
from infra.rotation_probe import (
    cert_serial,
    issuer_serial,
    retire_refusal,
    served_command,
    served_serial,
)
from infra.secretgen import generate_password
from tests.support.app_material import StatusApi, app_facts, app_material, run_here
from tests.support.rotating_redis import HOST_NAME, RotatingRedis, serial
from tests.support.tls_redis import REDIS_SERVER, free_port

pytestmark = pytest.mark.skipif(
    __import__("shutil").which(REDIS_SERVER) is None, reason="redis-server is not installed"
)


@pytest.fixture
def rotating() -> Iterator[RotatingRedis]:
    server = RotatingRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


def _client(
    r: RotatingRedis, user: str, password: str, identity: pki.CertifiedKey, ctx_ca: str
) -> redis.Redis:
    """One connection, no retry: a refusal or a dropped connection surfaces at once."""
    return redis.Redis(
        host=HOST_NAME,
        port=r.port,
        username=user,
        password=password,
        ssl=True,
        ssl_ca_data=ctx_ca,
        ssl_certfile=str(_write(r, "client.crt", identity.cert_pem)),
        ssl_keyfile=str(_write(r, "client.key", identity.key_pem)),
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
        protocol=2,  # the stack's Redis has no HELLO (infra/redis_conf.py)
    )


def _write(r: RotatingRedis, name: str, data: bytes) -> str:
    path = r.server.workdir / f"{generate_password(16)}-{name}"
    path.write_bytes(data)
    return str(path)


def _bundle(*cas: pki.CertifiedKey) -> str:
    return pki.trust_bundle([c.cert_pem for c in cas]).decode()


def _app(r: RotatingRedis, password: str | None = None) -> redis.Redis:
    app_cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    return _client(r, APP_USER, password or r.passwords[APP_USER][0], app_cert, _bundle(*r.trusted))


def _reload_tls(r: RotatingRedis) -> None:
    conf = r.server.conf
    done = r.reload(*tls_reload_command(conf.cert_file, conf.key_file, conf.ca_cert_file))
    assert done.returncode == 0, done.stderr
    assert "CONFIG SET OK" in done.stdout


def _reload_acl(r: RotatingRedis) -> None:
    done = r.reload(*RELOAD_ACL_WORDS)
    assert done.returncode == 0, done.stderr


# --- TLS material ----------------------------------------------------------------------------


def test_tls_reload__new_connections_get_the_new_certificate_old_ones_stay_up(
    rotating: RotatingRedis,
) -> None:
    r = rotating
    app_cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    ctx = r.client_context(app_cert)
    established = _app(r)
    established.set("cache:kept", b"before")
    # The app's allowlist has no CLIENT ID (infra/redis_acl.py), so the connection is told apart
    # by its socket: the client never reconnects without being asked (no retry, one connection).
    socket_before = established.connection._sock  # type: ignore[union-attr]
    old_serial = serial(r.server_cert)
    assert r.served_serial(ctx) == old_serial

    r.server_cert = r.issue_server(r.ca)
    r.deliver()
    assert r.served_serial(ctx) == old_serial, "the new files alone change nothing"

    _reload_tls(r)

    assert r.served_serial(ctx) == serial(r.server_cert), "new connections get the new one"
    assert established.get("cache:kept") == b"before"
    assert established.connection._sock is socket_before, (  # type: ignore[union-attr]
        "the established connection stayed up"
    )


def _with_serial_of_odd_length(r: RotatingRedis) -> pki.CertifiedKey:
    """A new server certificate whose serial has an odd number of hex digits (its first byte
    is below 0x10): about one random serial in eight."""
    for _ in range(500):
        cert = r.issue_server(r.ca)
        if len(f"{serial(cert):X}") % 2:
            return cert
    raise AssertionError("500 certificates without a serial of odd length")


def test_rotation_probe__reads_the_served_serial_as_it_reads_the_volumes(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """scripts/rotate.sh waits until the serial Redis serves equals the one in its volume
    (infra/rotation_probe.py: APP_FACTS's `served` from the client's side, cert_serial for the
    file). For every serial, also one whose hex form has an odd length, the two must read the
    same certificate the same way, or a renewal that took is reported as not served, forever."""
    r = rotating
    app_cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    ctx = r.client_context(app_cert)
    material = app_material(tmp_path, r, app_cert, token=generate_password(32))
    with StatusApi(material.token) as api:
        for cert in (r.issue_server(r.ca), _with_serial_of_odd_length(r)):
            r.server_cert = cert
            r.deliver()
            _reload_tls(r)
            assert r.served_serial(ctx) == serial(cert), "Redis serves the new certificate"
            facts = app_facts(material, r, api)
            in_volume = (r.volume / "server.crt").read_text()
            assert served_serial(facts["served"]) == cert_serial(in_volume), f"{serial(cert):X}"


def test_tls_reload__a_mismatched_key_is_refused_and_the_old_material_kept(
    rotating: RotatingRedis,
) -> None:
    r = rotating
    ctx = r.client_context(pki.issue_client_certificate(r.ca, APP_USER, validity_days=2))
    before = serial(r.server_cert)
    other = r.issue_server(r.ca)
    r.server_cert = pki.CertifiedKey(other.cert_pem, r.issue_server(r.ca).key_pem)
    r.deliver()
    conf = r.server.conf
    done = r.reload(*tls_reload_command(conf.cert_file, conf.key_file, conf.ca_cert_file))
    assert done.returncode == 1, "a failed reload fails the job (and the up)"
    assert "CONFIG SET answered" in done.stderr
    assert r.passwords[RELOAD_USER][0] not in done.stderr + done.stdout
    assert r.served_serial(ctx) == before, "Redis keeps serving what it had"


# --- ACL passwords -------------------------------------------------------------------------


def test_acl_reload__rotate_accepts_old_and_new__set_only_new(rotating: RotatingRedis) -> None:
    r = rotating
    old = r.passwords[APP_USER][0]
    new = generate_password(32)
    with pytest.raises(AuthenticationError):
        _app(r, new).ping()

    # ROTATE: the new password beside the old one.
    r.passwords[APP_USER] = [new, old]
    r.deliver()
    with pytest.raises(AuthenticationError):
        _app(r, new).ping()  # not before Redis reloads its users
    _reload_acl(r)
    assert _app(r, old).ping()
    assert _app(r, new).ping()

    # SET: only the new one.
    r.passwords[APP_USER] = [new]
    r.deliver()
    _reload_acl(r)
    assert _app(r, new).ping()
    with pytest.raises(AuthenticationError):
        _app(r, old).ping()


def test_acl_reload__the_reload_password_itself_rotates(rotating: RotatingRedis) -> None:
    r = rotating
    old, new = r.passwords[RELOAD_USER][0], generate_password(32)
    # ROTATE: the job still authenticates with the old (stable) password.
    r.passwords[RELOAD_USER] = [new, old]
    r.deliver()
    _reload_acl(r)
    # SET: the job's file now holds the new one, which Redis accepts since the last load.
    r.passwords[RELOAD_USER] = [new]
    r.deliver()
    _reload_acl(r)
    _reload_acl(r)  # and keeps working with it alone


def test_acl_reload__closes_the_reload_users_other_connection(
    rotating: RotatingRedis, reloader: redis.Redis
) -> None:
    """Why the program runs the ACL job after the TLS job (infra/components/reload.py): the
    ACL job's `ACL LOAD` closes every connection of the users the file defines, so a TLS job
    that authenticated just before it loses its connection before its CONFIG SET."""
    conf = rotating.server.conf
    # Authenticated, as the TLS job's redis-cli is once its AUTH is answered.
    assert reloader.execute_command("CONFIG", "SET", "tls-ca-cert-file", conf.ca_cert_file)  # type: ignore[no-untyped-call]
    _reload_acl(rotating)
    reload_tls = tls_reload_command(conf.cert_file, conf.key_file, conf.ca_cert_file)
    with pytest.raises(redis.ConnectionError):
        reloader.execute_command(*reload_tls)  # type: ignore[no-untyped-call]


def test_acl_reload__a_set_after_a_rotate_that_never_reached_redis__still_reloads(
    rotating: RotatingRedis,
) -> None:
    """A password SET is recorded whether or not the ROTATE before it reached Redis. On a
    deployed stack a connection flood made the ROTATE's ACL LOAD fail (Redis at maxclients);
    the next up (SET) gave the job the new password, which Redis had never loaded: WRONGPASS,
    on every up after, until Redis was restarted. The job now tries the retired password."""
    r = rotating
    old, new = r.passwords[RELOAD_USER][0], generate_password(32)
    app_old, app_new = r.passwords[APP_USER][0], generate_password(32)
    # ROTATE written to the volume; its ACL LOAD never ran.
    r.passwords[RELOAD_USER] = [new, old]
    r.passwords[APP_USER] = [app_new, app_old]
    r.deliver()
    # SET: the job's file holds the new password, its second try the one SET dropped.
    r.passwords[RELOAD_USER] = [new]
    r.passwords[APP_USER] = [app_new]
    r.retired_reload_password = old
    r.deliver()
    done = r.reload(*RELOAD_ACL_WORDS)
    assert done.returncode == 0, done.stderr
    assert "did not take" in done.stderr
    assert old not in done.stdout + done.stderr
    assert _app(r, app_new).ping()
    with pytest.raises(AuthenticationError):
        _app(r, app_old).ping()
    # And the next reload authenticates with the current password at its first try.
    again = r.reload(*RELOAD_ACL_WORDS)
    assert again.returncode == 0, again.stderr
    assert "did not take" not in again.stderr


def test_acl_reload__the_retired_password_is_not_tried_for_another_refusal(
    rotating: RotatingRedis,
) -> None:
    """Only a refused password is retried: a reply such as NOPERM fails the job as before."""
    r = rotating
    r.retired_reload_password = generate_password(32)
    r.deliver()
    done = r.reload("CONFIG", "GET", "maxmemory")
    assert done.returncode == 1
    assert "did not take" not in done.stderr
    assert "NOPERM" in done.stderr


_PROMOTE_RETRY = "trying the certificate the promote replaced"


def test_ca_rollover__a_promote_after_an_introduce_that_never_reached_redis__still_reloads(
    rotating: RotatingRedis,
) -> None:
    """The CA twin of the password case above: an introduce written to the volume whose TLS
    reload failed (e.g. Redis at maxclients), then the promote, which reissues the reload job's
    certificate from the new CA. Redis still trusts only the old CA and refuses it at the
    handshake; before, on every up after, until Redis was restarted. The job now tries the
    certificate the promote replaced (the old CA's), and its CONFIG SET makes Redis trust both,
    as the introduce should have."""
    r = rotating
    old_ca, new_ca = r.ca, pki.create_ca("secure-redis test CA", validity_days=2)
    old_reload = r.reload_cert
    old_client = pki.issue_client_certificate(old_ca, APP_USER, validity_days=2)
    new_client = pki.issue_client_certificate(new_ca, APP_USER, validity_days=2)
    r.trusted = [old_ca, new_ca]
    r.deliver()  # introduce: its reload never ran
    r.server_cert = r.issue_server(new_ca)
    r.reload_cert = pki.issue_client_certificate(new_ca, RELOAD_USER, validity_days=2)
    r.previous_reload_cert = old_reload
    r.deliver()  # promote
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        r.served_serial(r.client_context(new_client))  # Redis trusts only the old CA

    done = r.reload(*tls_reload_command(*_tls_files(r)))
    assert done.returncode == 0, done.stderr
    assert _PROMOTE_RETRY in done.stderr
    assert "PRIVATE KEY" not in done.stdout + done.stderr
    assert r.served_serial(r.client_context(new_client)) == serial(r.server_cert)
    assert r.served_serial(r.client_context(old_client)) == serial(r.server_cert)

    # Retire: the previous certificate is gone; the current one is let in at its first try.
    r.trusted, r.previous_reload_cert = [new_ca], None
    r.deliver()
    again = r.reload(*tls_reload_command(*_tls_files(r)))
    assert again.returncode == 0, again.stderr
    assert _PROMOTE_RETRY not in again.stderr
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        r.served_serial(r.client_context(old_client, [new_ca]))


def test_ca_rollover__a_promote_whose_reload_did_not_take__refuses_the_retire_until_reloaded(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """The promote written to the volume, its TLS reload never run: Redis still serves the old
    CA's certificate. The retire would leave the reload job trusting only the new CA, so it
    could no longer verify Redis (before: every up failed until Redis was restarted). The
    certificate Redis serves, read as the local applier and rotate.sh read it (the probe's
    script, from the app's side), makes retire_refusal refuse, naming the promote's reload;
    that reload run again (the volume still holds the promote) lets the retire go on."""
    r = rotating
    old_ca, new_ca = r.ca, pki.create_ca("secure-redis test CA", validity_days=2)
    r.trusted = [old_ca, new_ca]
    r.deliver()  # introduce
    assert r.reload(*tls_reload_command(*_tls_files(r))).returncode == 0
    old_reload = r.reload_cert
    r.trusted = [new_ca, old_ca]
    r.server_cert = r.issue_server(new_ca)
    r.reload_cert = pki.issue_client_certificate(new_ca, RELOAD_USER, validity_days=2)
    r.previous_reload_cert = old_reload
    r.deliver()  # promote: its reload never ran
    app = app_material(
        tmp_path, r, pki.issue_client_certificate(new_ca, APP_USER, validity_days=2), token="t"
    )
    bundle = (r.volume / "ca.crt").read_text()
    staying = [f"{serial(new_ca):X}"]  # the bundle the retire writes

    def served_issuer() -> str | None:
        done = run_here(served_command(HOST_NAME, r.port, str(app.directory)), check=True)
        return issuer_serial(done.stdout, bundle)

    assert served_issuer() == f"{serial(old_ca):X}"
    refused = retire_refusal("s", served_issuer(), staying)
    assert refused is not None
    assert "docker start --attach secure-redis-s-reload-tls" in refused
    assert r.reload(*tls_reload_command(*_tls_files(r))).returncode == 0  # as refused says
    assert retire_refusal("s", served_issuer(), staying) is None


def test_ca_rollover__the_previous_certificate_is_not_tried_after_an_answer(
    rotating: RotatingRedis,
) -> None:
    """Only a connection Redis gave no answer on is tried again: a reply such as NOPERM fails
    the job as before, with the certificate Redis accepted."""
    r = rotating
    r.previous_reload_cert = pki.issue_client_certificate(r.ca, RELOAD_USER, validity_days=2)
    r.deliver()
    done = r.reload("CONFIG", "GET", "maxmemory")
    assert done.returncode == 1
    assert _PROMOTE_RETRY not in done.stderr
    assert "NOPERM" in done.stderr


def test_ca_rollover__the_previous_certificate_is_tried_only_when_redis_refused_the_current(
    rotating: RotatingRedis,
) -> None:
    """During a promote the job had tried the previous certificate on any failure without an
    answer. Neither a Redis it cannot reach nor a Redis whose certificate it does not trust is
    a refusal of its certificate: the job fails at once with redis-cli's own error, as outside
    a promote, and says nothing of an introduce that did not take."""
    r = rotating
    r.previous_reload_cert = pki.issue_client_certificate(r.ca, RELOAD_USER, validity_days=2)
    r.deliver()
    script = reload_script(str(r.volume), HOST_NAME, free_port())  # nothing listens there
    unreachable = subprocess.run(
        ["sh", "-euc", script, "redis-reload", *tls_reload_command(*_tls_files(r))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert unreachable.returncode != 0
    assert "Connection refused" in unreachable.stderr
    assert _PROMOTE_RETRY not in unreachable.stderr
    r.trusted = [pki.create_ca("secure-redis test CA", validity_days=2)]  # not Redis's issuer
    r.deliver()
    unverified = r.reload(*tls_reload_command(*_tls_files(r)))
    assert unverified.returncode != 0
    assert "certificate verify failed" in unverified.stderr
    assert _PROMOTE_RETRY not in unverified.stderr


@pytest.mark.parametrize("protocol", ["TLSv1.2", "TLSv1.3"])
def test_ca_rollover__a_certificate_refused_at_the_handshake_is_told_under_either_protocol(
    protocol: str,
) -> None:
    """redis-cli words Redis's refusal of its certificate differently by protocol (an alert
    inside SSL_connect under TLS 1.2, a reset at the first read under TLS 1.3): both are the
    refusal the previous certificate is tried for (REFUSED_AT_HANDSHAKE)."""
    r = RotatingRedis()
    r.server.conf = dataclasses.replace(r.server.conf, tls_protocols=(protocol,))
    r.server.conf_file.write_text(render_redis_conf(r.server.conf))
    r.start()
    try:
        r.previous_reload_cert = r.reload_cert
        stranger = pki.create_ca("secure-redis test CA", validity_days=2)
        r.reload_cert = pki.issue_client_certificate(stranger, RELOAD_USER, validity_days=2)
        r.deliver()
        done = r.reload(*tls_reload_command(*_tls_files(r)))
    finally:
        r.close()
    assert done.returncode == 0, done.stderr
    assert _PROMOTE_RETRY in done.stderr
    assert any(words in done.stderr for words in REFUSED_AT_HANDSHAKE), done.stderr


def test_ca_rollover__without_a_previous_certificate_a_refused_one_fails_the_job(
    rotating: RotatingRedis,
) -> None:
    """Outside a promote there is no second certificate: a refused one fails the job (and
    the up) with redis-cli's own error, and nothing is tried again."""
    r = rotating
    stranger = pki.create_ca("secure-redis test CA", validity_days=2)
    r.reload_cert = pki.issue_client_certificate(stranger, RELOAD_USER, validity_days=2)
    r.deliver()
    done = r.reload(*tls_reload_command(*_tls_files(r)))
    assert done.returncode != 0
    assert _PROMOTE_RETRY not in done.stderr
    assert "CONFIG SET OK" not in done.stdout


def _tls_files(r: RotatingRedis) -> tuple[str, str, str]:
    conf = r.server.conf
    return conf.cert_file, conf.key_file, conf.ca_cert_file


# --- the reload identity ---------------------------------------------------------------------


@pytest.fixture
def reloader(rotating: RotatingRedis) -> redis.Redis:
    r = rotating
    return _client(r, RELOAD_USER, r.passwords[RELOAD_USER][0], r.reload_cert, _bundle(*r.trusted))


@pytest.mark.parametrize(
    "command",
    [
        ("PING",),
        ("GET", "cache:x"),
        ("SET", "cache:x", "1"),
        ("KEYS", "*"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "REWRITE"),
        ("CONFIG", "RESETSTAT"),
        ("ACL", "LIST"),
        ("ACL", "GETUSER", "app"),
        ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all", "~*"),
        ("ACL", "SAVE"),
        ("ACL", "DELUSER", "app"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "USER", "app"),
        ("INFO",),
        ("MONITOR",),
        ("SHUTDOWN",),
        ("PUBLISH", "channel", "x"),
        ("EVAL", "return 1", "0"),
    ],
    ids=lambda words: "-".join(words[:2]).lower(),
)
def test_reload_identity__every_other_command_is_noperm(
    reloader: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        reloader.execute_command(*command)  # type: ignore[no-untyped-call]


def test_reload_identity__may_reload_tls_and_acl(
    rotating: RotatingRedis, reloader: redis.Redis
) -> None:
    conf = rotating.server.conf
    assert reloader.execute_command("CONFIG", "SET", "tls-ca-cert-file", conf.ca_cert_file)  # type: ignore[no-untyped-call]
    assert reloader.execute_command(*RELOAD_ACL_WORDS)  # type: ignore[no-untyped-call]


def test_reload_identity__protected_configs_stay_out_of_its_reach(reloader: redis.Redis) -> None:
    # CONFIG SET cannot be narrowed below the subcommand in Redis 7.0 ACLs; what bounds it is
    # enable-protected-configs no (infra/redis_conf.py): no file-writing setting.
    for setting, value in (("dir", "/tmp"), ("dbfilename", "x.rdb")):
        with pytest.raises(ResponseError, match="protected config"):
            reloader.execute_command("CONFIG", "SET", setting, value)  # type: ignore[no-untyped-call]


# --- CA rollover ---------------------------------------------------------------------------


def test_ca_rollover__bundle_accepts_clients_of_old_and_new_ca(rotating: RotatingRedis) -> None:
    r = rotating
    old_ca = r.ca
    # Same subject name as the old CA, as a stack's rollover makes: OpenSSL tells them apart
    # by key identifier.
    new_ca = pki.create_ca("secure-redis test CA", validity_days=2)
    old_client = pki.issue_client_certificate(old_ca, APP_USER, validity_days=2)
    new_client = pki.issue_client_certificate(new_ca, APP_USER, validity_days=2)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        r.served_serial(r.client_context(new_client, [old_ca, new_ca]))  # not trusted yet

    # Introduce: both trusted; the server still presents the old CA's certificate.
    r.trusted = [old_ca, new_ca]
    r.deliver()
    _reload_tls(r)
    assert r.served_serial(r.client_context(old_client, [old_ca])) == serial(r.server_cert)
    assert r.served_serial(r.client_context(new_client, [old_ca, new_ca]))

    # Promote: the new CA issues the server certificate; clients of both CAs still connect.
    r.server_cert = r.issue_server(new_ca)
    r.reload_cert = pki.issue_client_certificate(new_ca, RELOAD_USER, validity_days=2)
    r.deliver()
    _reload_tls(r)
    both = [old_ca, new_ca]
    assert r.served_serial(r.client_context(old_client, both)) == serial(r.server_cert)
    assert r.served_serial(r.client_context(new_client, both)) == serial(r.server_cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        r.served_serial(r.client_context(new_client, [old_ca]))  # why clients need the bundle

    # Retire: only the new CA; a certificate of the old one is refused.
    r.trusted = [new_ca]
    r.deliver()
    _reload_tls(r)
    assert r.served_serial(r.client_context(new_client, [new_ca])) == serial(r.server_cert)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        r.served_serial(r.client_context(old_client, [new_ca]))
