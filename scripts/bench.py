"""Client benchmark: secure_cache against plaintext redis-py and the designs it replaces.

Run through scripts/bench.sh. It starts its own two servers with the same persistence and
memory settings - a plaintext redis-server (baseline) and a TLS-only one with client
certificates and the project's ACL (tests/support/tls_redis.py) - and measures, for 1 KiB
values (and 10 KiB, 100 KiB), in one process, by default with the servers on one CPU and
the bench on another (--placement, scripts/cpu_placement.py):

    baseline   redis-py, plaintext, no auth, no encryption (defaults; hiredis installed)
    client     secure_cache.SecureCache: mTLS + ACL user + AES-256-GCM + keyed-hash names
    tls_transport  the client's own transport and pool over the same mTLS + ACL, values as
               they are, batches written as the client writes them (resp.writes): the cost
               of TLS alone; client / this = the application layer's
    tls_aes    tls_transport with one AES-256-GCM seal per value written and one open per
               value read (a random nonce before the ciphertext), and nothing else: no
               names, no envelope. The least an application-layer AES-GCM adds to TLS, so
               tls_aes / tls_transport bounds what any such client's ratio can reach here
               (aes_floor_vs_tls_transport), and client / tls_aes is what ours adds to it
    seeds      the requirement documents' design: redis-py defaults over TLS (same mTLS and
               ACL) with Fernet-encrypted values under plaintext key names
    peer       py-key-value-aio 0.4.6 FernetEncryptionWrapper over its RedisStore. Its
               rediss:// URL handling is not trusted here (0.4.4 dropped TLS), so it is
               handed an explicit redis.asyncio TLS client with the same certificates.
    ceiling    redis-benchmark (C) over TLS with the same ACL user, one connection

Sequential mode alternates SET and GET on 100 hot keys, one round trip each. Pipelined mode
writes 100 values in one round trip (a redis-py pipeline; the clients' batch calls) and
reads them back in one (MGET; the clients' batch calls). A round measures every column
once, in ten slices where the columns take turns (in the reverse order every other slice),
and each ratio is the median over the rounds of client / baseline (or tls_transport) from
the same round, reported with its spread. Each run
also records this process's CPU time per operation (client_cpu_us_per_op): the client
side's own cost, which a shared machine's load moves far less than the rates.

The concurrency mode runs one AsyncSecureCache shared by 50 tasks on uvloop's event loop, the
one the service runs it on (app/secure_cache/service.py; its calls coalesced into shared
writes), one SecureCache shared by 8 threads, and redis-benchmark -c 50 (one command
per round trip on each of its 50 connections, no -P).

The last output line is one JSON object (see `summary`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis
import uvloop
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from key_value.aio.stores.redis import RedisStore
from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

from scripts.bench_goals import goals, missed
from scripts.cpu_placement import PLACEMENTS, PlacementError, pin, plan
from secure_cache import AsyncSecureCache, SecureCache
from secure_cache.allocator import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES, keep_freed_memory
from secure_cache.cli_parser import OneLineParser, say
from secure_cache.crypto import NONCE_BYTES, TAG_BYTES, VIEW_BYTES, Keyring
from secure_cache.int_settings import whole_number
from secure_cache.resp import pack_command, pack_get, pack_set, writes
from secure_cache.settings import load_settings
from secure_cache.transport import Transport, TransportConfig
from tests.support.tls_redis import TlsRedisServer, free_port

KEYS = 100
SIZES = (1024, 10 * 1024, 100 * 1024)
# (sequential SET+GET pairs, pipelined batches of 100 SETs + 100 GETs) per column and size;
# the slow peer gets fewer, which changes the precision of its rate, not the rate.
WORK = {1024: (1500, 30), 10 * 1024: (800, 12), 100 * 1024: (300, 6)}
PEER_SHARE = 4
COLD_KEYS = 8192  # more than the client's 4096-entry name memo, cycled: every name is hashed
# Concurrency mode: many callers on one client (its pool), 1 KiB values, against
# redis-benchmark with as many connections over the same mTLS + ACL.
CONCURRENT_TASKS = 50
CONCURRENT_THREADS = 8
CONCURRENT_SIZE = 1024
CONCURRENT_PAIRS = 3000  # SET+GET pairs per column and round, shared by all callers
# A round's work per column runs in this many slices, the columns taking turns (run_rounds).
SLICES = 10


# The seeds' design and py-key-value-aio send commands outside the app's allowlist
# (infra/redis_acl.py: MSET, ...), so they run as a user with the categories those designs
# assume, on the same key prefix, mTLS and server; the ACL check costs the same per command.
PEER_USER = "peer"
PEER_PASSWORD = secrets.token_hex(16)
PEER_ACL = (
    f"user {PEER_USER} on #{hashlib.sha256(PEER_PASSWORD.encode()).hexdigest()} resetkeys "
    "~cache:* resetchannels -@all +@read +@write +@keyspace +@connection -@dangerous\n"
)
# Both servers rewrite their append-only file when the bench asks, between rounds (settle),
# and not on their own: a stack's automatic rewrite (from 64 MiB, then at each
# doubling) forked Redis in whichever column happened to be running, and the same 100 KiB
# rounds spread from 0.5 to 2.0 around their median. The appends and their fsync every
# second, which every write pays, are as on a stack.
REWRITE_ONLY_WHEN_ASKED = "auto-aof-rewrite-min-size 64gb\n"
ADMIN_USER = "bench-admin"
ADMIN_PASSWORD = secrets.token_hex(16)
ADMIN_ACL = (
    f"user {ADMIN_USER} on #{hashlib.sha256(ADMIN_PASSWORD.encode()).hexdigest()} "
    "resetkeys resetchannels -@all +bgrewriteaof +info\n"
)


# -- servers -----------------------------------------------------------------------------------


@contextmanager
def plaintext_server(cpus: frozenset[int] = frozenset()) -> Iterator[int]:
    """The baseline: same persistence and memory policy as the TLS server, no TLS, no ACL;
    on `cpus` (scripts/cpu_placement.py) once it answers."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="secure-redis-bench-"))
    conf = workdir / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\ndir {workdir}\n"
        'appendonly yes\nappendfsync everysec\nsave ""\nmaxmemory 256mb\n'
        'maxmemory-policy allkeys-lru\nlogfile ""\n' + REWRITE_ONLY_WHEN_ASKED
    )
    process = subprocess.Popen(  # fixed argv
        ["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        pin(process.pid, cpus)
        yield port
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def tls_server(cpus: frozenset[int] = frozenset()) -> Iterator[TlsRedisServer]:
    """The TLS + ACL server every other column uses, on `cpus` once it answers."""
    server = TlsRedisServer(maxmemory_mb=256, extra_acl=PEER_ACL + ADMIN_ACL)
    try:
        # Appended: in redis.conf the last occurrence of a directive wins.
        with server.conf_file.open("a") as conf:
            conf.write(REWRITE_ONLY_WHEN_ASKED)
        server.start()
        pin(server.pid, cpus)
        yield server
    finally:
        server.close()


def settle(admins: list[redis.Redis]) -> None:
    """Rewrite each server's append-only file now and wait until it is done: with
    REWRITE_ONLY_WHEN_ASKED no rewrite forks Redis during a timed run, and this keeps the
    files from growing by a round's writes each round (about 450 MB at 100 KiB)."""
    for admin in admins:
        with contextlib.suppress(redis.ResponseError):  # one is already running: waited for
            admin.bgrewriteaof()
        while True:
            persistence = admin.info("persistence")
            if not (persistence["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"]):
                break
            time.sleep(0.005)


def env_for(server: TlsRedisServer) -> dict[str, str]:
    m = server.material
    return {
        "ENVIRONMENT": "development",
        "REDIS_URL": server.url,
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD": m.app_password,
        "REDIS_TLS_CA_CERT": str(m.ca_file),
        "REDIS_TLS_CERT_FILE": str(m.app.cert_file),
        "REDIS_TLS_KEY_FILE": str(m.app.key_file),
        "REDIS_ENCRYPTION_KEY": m.data_key,
    }


def redis_py_tls(server: TlsRedisServer) -> redis.Redis:
    """redis-py defaults over the same mTLS + ACL (what the seed documents build)."""
    m = server.material
    return redis.Redis.from_url(
        server.url,
        username=PEER_USER,
        password=PEER_PASSWORD,
        ssl_ca_certs=str(m.ca_file),
        ssl_certfile=str(m.app.cert_file),
        ssl_keyfile=str(m.app.key_file),
        # RESP2: the stack's Redis has no HELLO (infra/redis_conf.py); redis-py 8 defaults to
        # RESP3, which it asks for with HELLO.
        protocol=2,
    )


# -- columns -----------------------------------------------------------------------------------


# What a column's run returns: the operations it made and the seconds they took.
Timed = tuple[int, float]


class Column:
    """One way of caching: sequential pairs and pipelined batches, each timed by itself."""

    name = ""

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        raise NotImplementedError

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        raise NotImplementedError

    def check(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return


def _rate(ops: int, start: float) -> float:
    return ops / (time.perf_counter() - start)


def _timed(ops: int, start: float) -> Timed:
    return ops, time.perf_counter() - start


class Baseline(Column):
    name = "baseline"

    def __init__(self, port: int) -> None:
        self.r = redis.Redis(port=port)

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        r, n = self.r, len(keys)
        start = time.perf_counter()
        for i in range(pairs):
            key = keys[i % n]
            r.set(key, value)
            r.get(key)
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        r = self.r
        start = time.perf_counter()
        for _ in range(batches):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, value)
            pipe.execute()
            r.mget(keys)
        return _timed(2 * len(keys) * batches, start)

    def check(self, key: str, value: bytes) -> None:
        self.r.set(key, value)
        assert self.r.get(key) == value

    def close(self) -> None:
        self.r.close()


class Client(Column):
    name = "client"

    def __init__(self, server: TlsRedisServer) -> None:
        self.c = SecureCache.from_env(env_for(server))

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        c, n = self.c, len(keys)
        start = time.perf_counter()
        for i in range(pairs):
            key = keys[i % n]
            c.set(key, value)
            c.get(key)
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        c = self.c
        items = dict.fromkeys(keys, value)
        start = time.perf_counter()
        for _ in range(batches):
            c.set_many(items)
            c.get_many(keys)
        return _timed(2 * len(keys) * batches, start)

    def check(self, key: str, value: bytes) -> None:
        self.c.set(key, value)
        assert self.c.get(key) == value
        assert self.c.backend == "redis"

    def close(self) -> None:
        self.c.close()


class TlsTransport(Column):
    """The client's own connection code and pool (secure_cache.transport) over the same mTLS
    server and ACL user, sending values as they are: no AES-GCM, no keyed-hash names. The
    client / this ratio is what the application layer costs on top of TLS."""

    name = "tls_transport"

    def __init__(self, server: TlsRedisServer) -> None:
        self.t = Transport(TransportConfig.from_settings(load_settings(env_for(server))))

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        execute = self.t.execute_packed
        names = [k.encode() for k in keys]
        n = len(names)
        start = time.perf_counter()
        for i in range(pairs):
            name = names[i % n]
            execute((pack_set(name, value),))
            execute((pack_get(name),))
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        t = self.t
        names = [k.encode() for k in keys]
        start = time.perf_counter()
        for _ in range(batches):
            # Written as the client writes a batch (resp.writes): the same chunking.
            t.execute_many(writes([pack_set(name, value) for name in names]), len(names))
            t.execute_packed((pack_command(("MGET", *names)),))
        return _timed(2 * len(keys) * batches, start)

    def check(self, key: str, value: bytes) -> None:
        self.t.execute_packed((pack_set(key.encode(), value),))
        assert self.t.execute_packed((pack_get(key.encode()),)) == value

    def close(self) -> None:
        self.t.close()


class TlsAes(TlsTransport):
    """TlsTransport with the application layer's AES-256-GCM and nothing more: each value
    sealed under a random nonce on its way out and opened on its way in. Where client /
    tls_transport falls short, tls_aes / tls_transport says how much of that the cipher
    alone takes, run as the client runs it, inside the round trip (docs/client.md,
    "Benchmark")."""

    name = "tls_aes"

    def __init__(self, server: TlsRedisServer) -> None:
        super().__init__(server)
        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        execute, seal, open_ = self.t.execute_packed, self.aead.encrypt, self._open
        names = [k.encode() for k in keys]
        n = len(names)
        start = time.perf_counter()
        for i in range(pairs):
            name = names[i % n]
            nonce = os.urandom(NONCE_BYTES)  # one getrandom per SET, as the client's
            execute((pack_set(name, seal(nonce, value, None), prefix=nonce),))
            open_(execute((pack_get(name),)))
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        t, seal, open_ = self.t, self.aead.encrypt, self._open
        names = [k.encode() for k in keys]
        start = time.perf_counter()
        for _ in range(batches):
            # One getrandom per batch, sliced per value, as Keyring.seal_many.
            pool = os.urandom(NONCE_BYTES * len(names))
            nonces = [pool[i : i + NONCE_BYTES] for i in range(0, len(pool), NONCE_BYTES)]
            t.execute_many(
                writes(
                    [
                        pack_set(name, seal(nonce, value, None), prefix=nonce)
                        for name, nonce in zip(names, nonces, strict=True)
                    ]
                ),
                len(names),
            )
            for raw in t.execute_packed((pack_command(("MGET", *names)),)):
                open_(raw)
        return _timed(2 * len(keys) * batches, start)

    def _open(self, raw: bytes) -> bytes:
        # Sliced or viewed as Keyring.open_value does, by size (crypto.VIEW_BYTES).
        body = raw[NONCE_BYTES:] if len(raw) < VIEW_BYTES else memoryview(raw)[NONCE_BYTES:]
        return self.aead.decrypt(raw[:NONCE_BYTES], body, None)

    def check(self, key: str, value: bytes) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.aead.encrypt(nonce, value, None)
        self.t.execute_packed((pack_set(key.encode(), sealed, prefix=nonce),))
        raw = self.t.execute_packed((pack_get(key.encode()),))
        assert raw[NONCE_BYTES:-TAG_BYTES] != value, "stored as it was sent, not sealed"
        assert len(raw) == NONCE_BYTES + len(value) + TAG_BYTES  # nonce, ciphertext, tag
        assert self._open(raw) == value


class Seeds(Column):
    name = "seeds"

    def __init__(self, server: TlsRedisServer) -> None:
        self.r = redis_py_tls(server)
        self.f = Fernet(Fernet.generate_key())

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        r, f, n = self.r, self.f, len(keys)
        start = time.perf_counter()
        for i in range(pairs):
            key = keys[i % n]
            r.set(key, f.encrypt(value))
            f.decrypt(r.get(key))  # type: ignore[arg-type]
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        r, f = self.r, self.f
        start = time.perf_counter()
        for _ in range(batches):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, f.encrypt(value))
            pipe.execute()
            for token in r.mget(keys):
                f.decrypt(token)  # type: ignore[arg-type]
        return _timed(2 * len(keys) * batches, start)

    def check(self, key: str, value: bytes) -> None:
        self.r.set(key, self.f.encrypt(value))
        assert self.f.decrypt(self.r.get(key)) == value  # type: ignore[arg-type]

    def close(self) -> None:
        self.r.close()


class Peer(Column):
    """py-key-value-aio: an async API, driven from one event loop; values are JSON dicts."""

    name = "peer"

    def __init__(self, server: TlsRedisServer) -> None:
        m = server.material
        self.loop = asyncio.new_event_loop()
        # Explicit TLS client: the store is never given the rediss:// URL to interpret.
        self.client = aredis.Redis(
            host=server.host,
            port=server.port,
            username=PEER_USER,
            password=PEER_PASSWORD,
            ssl=True,
            ssl_ca_certs=str(m.ca_file),
            ssl_certfile=str(m.app.cert_file),
            ssl_keyfile=str(m.app.key_file),
            decode_responses=True,
            protocol=2,  # the stack's Redis has no HELLO (infra/redis_conf.py)
        )
        self.store = FernetEncryptionWrapper(
            RedisStore(client=self.client, default_collection="cache"),
            fernet=Fernet(Fernet.generate_key()),
        )

    @staticmethod
    def _doc(value: bytes) -> dict[str, str]:
        return {"v": base64.b64encode(value).decode()[: len(value)]}

    def seq(self, keys: list[str], value: bytes, pairs: int) -> Timed:
        doc, store, n = self._doc(value), self.store, len(keys)
        pairs = max(1, pairs // PEER_SHARE)

        async def run() -> None:
            for i in range(pairs):
                await store.put(keys[i % n], doc, collection="cache")
                await store.get(keys[i % n], collection="cache")

        start = time.perf_counter()
        self.loop.run_until_complete(run())
        return _timed(2 * pairs, start)

    def pipe(self, keys: list[str], value: bytes, batches: int) -> Timed:
        doc, store = self._doc(value), self.store
        docs = [doc] * len(keys)
        batches = max(1, batches // PEER_SHARE)

        async def run() -> None:
            for _ in range(batches):
                await store.put_many(keys, docs, collection="cache")
                await store.get_many(keys, collection="cache")

        start = time.perf_counter()
        self.loop.run_until_complete(run())
        return _timed(2 * len(keys) * batches, start)

    def check(self, key: str, value: bytes) -> None:
        doc = self._doc(value)

        async def run() -> Any:
            await self.store.put(key, doc, collection="cache")
            return await self.store.get(key, collection="cache")

        assert self.loop.run_until_complete(run()) == doc

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


# -- ceiling: redis-benchmark ------------------------------------------------------------------


def redis_benchmark(server: TlsRedisServer, size: int, pipeline: int, requests: int) -> float:
    """SET+GET ops/s of redis-benchmark over TLS, one connection (as the Python columns)."""
    m = server.material
    value = "x" * size
    base = [
        "redis-benchmark", "--tls", "--cacert", str(m.ca_file), "--cert", str(m.app.cert_file),
        "--key", str(m.app.key_file), "-h", server.host, "-p", str(server.port),
        "--user", "app", "-a", m.app_password, "-c", "1", "-n", str(requests),
        "-r", str(KEYS), "-P", str(pipeline), "--csv",
    ]  # fmt: skip
    rates = []
    for command in (["SET", "cache:rb:__rand_int__", value], ["GET", "cache:rb:__rand_int__"]):
        out = subprocess.run(  # fixed argv
            base + command, capture_output=True, text=True, timeout=120, check=True
        ).stdout
        rows = list(csv.reader(io.StringIO(out)))
        rates.append(float(rows[1][1]))
    # Alternating SET and GET: the harmonic combination of the two rates.
    return 2 / (1 / rates[0] + 1 / rates[1])


# -- micro measurements ------------------------------------------------------------------------


def encrypt_decrypt_us(size: int = 1024, loops: int = 20_000, repeats: int = 7) -> float:
    keyring = Keyring(os.urandom(32))
    logical = b"bench:key:42"
    name = keyring.primary.name(logical)
    value = os.urandom(size)
    seal, open_value = keyring.seal, keyring.open_value
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            open_value(name, logical, seal(name, logical, value))
        samples.append((time.perf_counter() - start) / loops * 1e6)
    return statistics.median(samples)


def key_name_us(loops: int = 20_000) -> float:
    keyring = Keyring(os.urandom(32))
    name = keyring.primary.name  # the uncached hash
    keys = [b"bench:key:%d" % i for i in range(loops)]
    start = time.perf_counter()
    for key in keys:
        name(key)
    return (time.perf_counter() - start) / loops * 1e6


def fernet_us(size: int = 1024, loops: int = 5_000) -> float:
    f = Fernet(Fernet.generate_key())
    value = os.urandom(size)
    start = time.perf_counter()
    for _ in range(loops):
        f.decrypt(f.encrypt(value))
    return (time.perf_counter() - start) / loops * 1e6


def connect_ms(server: TlsRedisServer, samples: int = 60) -> list[float]:
    """New connection: TCP + TLS (shared context) + AUTH + PING, as the client makes them."""
    with SecureCache(load_settings(env_for(server))) as cache:
        transport = cache._transport
        transport.probe()  # warm the imports and the context
        return [transport.probe() * 1000 for _ in range(samples)]


def connect_ms_redis_py(server: TlsRedisServer, samples: int = 20) -> list[float]:
    """The same with redis-py defaults: a new SSLContext (CA and key loaded) per connection."""
    times = []
    for _ in range(samples):
        client = redis_py_tls(server)
        start = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - start) * 1000)
        client.close()
    return times


# -- concurrency: many callers, few connections ------------------------------------------------


def _latency_ms(samples: list[float], quantile: int) -> float:
    """The q-th percentile (1..99) of per-command latencies given in seconds, in ms."""
    return statistics.quantiles(samples, n=100)[quantile - 1] * 1000


def async_concurrent(
    server: TlsRedisServer, value: bytes, pairs: int, tasks: int, cpu: list[float] | None = None
) -> tuple[float, list[float]]:
    """ops/s and per-command latencies of one AsyncSecureCache shared by `tasks` tasks on
    uvloop's loop, as the service runs it; appends this process's CPU time per operation (us)
    to `cpu`."""
    latencies: list[float] = []
    per_task = max(1, pairs // tasks)

    async def run() -> float:
        cache = await AsyncSecureCache.from_env(env_for(server))
        try:

            async def worker(index: int, steps: int = per_task) -> None:
                clock, record = time.perf_counter, latencies.append
                for step in range(steps):
                    key = f"cache:conc:{(index * per_task + step) % KEYS}"
                    start = clock()
                    await cache.set(key, value)
                    middle = clock()
                    got = await cache.get(key)
                    record(middle - start)
                    record(clock() - middle)
                    # Every caller writes the same value, so a concurrent write to the
                    # same key cannot make this wrong; anything else is a client bug.
                    if got != value:
                        raise RuntimeError(f"async client returned a wrong value for {key}")

            # Warm: every task's connection exists and every key name is memoised before the
            # clock starts, so the figure is steady state, not 50 handshakes.
            await asyncio.gather(*(worker(i, 2) for i in range(tasks)))
            latencies.clear()
            start, used = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker(i) for i in range(tasks)))
            if cpu is not None:
                cpu.append((time.process_time() - used) / (2 * per_task * tasks) * 1e6)
            return _rate(2 * per_task * tasks, start)
        finally:
            await cache.close()

    return uvloop.run(run()), latencies


def threaded_concurrent(
    server: TlsRedisServer, value: bytes, pairs: int, threads: int, cpu: list[float] | None = None
) -> tuple[float, list[float]]:
    """ops/s and per-command latencies of one SecureCache shared by `threads` threads;
    appends this process's CPU time per operation (us) to `cpu`."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = max(1, pairs // threads)
    with SecureCache.from_env(env_for(server)) as cache:

        def worker(index: int, steps: int = per_thread) -> None:
            mine: list[float] = []
            clock = time.perf_counter
            for step in range(steps):
                key = f"cache:conc:{(index * per_thread + step) % KEYS}"
                start = clock()
                cache.set(key, value)
                middle = clock()
                got = cache.get(key)
                mine.append(middle - start)
                mine.append(clock() - middle)
                if got != value:
                    raise RuntimeError(f"sync client returned a wrong value for {key}")
            with lock:
                latencies.extend(mine)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda index: worker(index, 2), range(threads)))  # warm, as above
            latencies.clear()
            start, used = time.perf_counter(), time.process_time()
            list(pool.map(worker, range(threads)))
            rate = _rate(2 * per_thread * threads, start)
            if cpu is not None:
                cpu.append((time.process_time() - used) / (2 * per_thread * threads) * 1e6)
    return rate, latencies


def redis_benchmark_concurrent(
    server: TlsRedisServer, size: int, connections: int, requests: int
) -> tuple[float, float, float]:
    """redis-benchmark over TLS with `connections` clients: SET+GET ops/s, p50 and p99 ms."""
    m = server.material
    base = [
        "redis-benchmark", "--tls", "--cacert", str(m.ca_file), "--cert", str(m.app.cert_file),
        "--key", str(m.app.key_file), "-h", server.host, "-p", str(server.port),
        "--user", "app", "-a", m.app_password, "-c", str(connections), "-n", str(requests),
        "-r", str(KEYS), "--csv",
    ]  # fmt: skip
    value = "x" * size
    rows = []
    for command in (["SET", "cache:rb:__rand_int__", value], ["GET", "cache:rb:__rand_int__"]):
        out = subprocess.run(  # fixed argv
            base + command, capture_output=True, text=True, timeout=120, check=True
        ).stdout
        header, row = list(csv.reader(io.StringIO(out)))[:2]
        rows.append(dict(zip(header, row, strict=True)))
    rate = 2 / sum(1 / float(r["rps"]) for r in rows)
    # The two commands run the same number of times: their mean percentile is the pair's.
    p50 = statistics.fmean(float(r["p50_latency_ms"]) for r in rows)
    p99 = statistics.fmean(float(r["p99_latency_ms"]) for r in rows)
    return rate, p50, p99


def run_concurrency(
    server: TlsRedisServer, rounds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Interleaved rounds of the async client, the threaded client and redis-benchmark."""
    value = os.urandom(CONCURRENT_SIZE)
    cpu: dict[str, list[float]] = {"async_c50": [], "sync_t8": []}
    runs: dict[str, Callable[[], tuple[float, float, float]]] = {
        "async_c50": lambda: _with_percentiles(
            async_concurrent(server, value, CONCURRENT_PAIRS, CONCURRENT_TASKS, cpu["async_c50"])
        ),
        "sync_t8": lambda: _with_percentiles(
            threaded_concurrent(server, value, CONCURRENT_PAIRS, CONCURRENT_THREADS, cpu["sync_t8"])
        ),
        "ceiling_c50": lambda: redis_benchmark_concurrent(
            server, CONCURRENT_SIZE, CONCURRENT_TASKS, 4 * CONCURRENT_PAIRS
        ),
    }
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(runs[name]())
        last = {name: samples[name][-1][0] for name in names}
        log(
            f"bench: concurrency round {index + 1}/{rounds}: ops/s "
            + " ".join(f"{name} {rate:,.0f}" for name, rate in last.items())
        )
    ratio = [a[0] / c[0] for a, c in zip(samples["async_c50"], samples["ceiling_c50"], strict=True)]
    return {
        "concurrent_ops_per_s": {
            name: round(statistics.median(s[0] for s in rows)) for name, rows in samples.items()
        },
        "concurrent_ops_per_s_spread": {
            name: [round(min(s[0] for s in rows)), round(max(s[0] for s in rows))]
            for name, rows in samples.items()
        },
        "concurrent_latency_ms": {
            name: {
                "p50": round(statistics.median(s[1] for s in rows), 2),
                "p99": round(statistics.median(s[2] for s in rows), 2),
            }
            for name, rows in samples.items()
        },
        # The client's own CPU per operation in the timed part (redis-benchmark's is not
        # measured): what one call costs the caller's process.
        "concurrent_client_cpu_us_per_op": {
            name: round(statistics.median(rows), 1) for name, rows in cpu.items()
        },
        "ratio_vs_ceiling_c50": round(statistics.median(ratio), 3),
        "ratio_vs_ceiling_c50_spread": [round(min(ratio), 3), round(max(ratio), 3)],
        "ratio_vs_ceiling_c50_rounds": [round(r, 3) for r in ratio],
        "concurrency": {
            "tasks": CONCURRENT_TASKS,
            "threads": CONCURRENT_THREADS,
            "value_bytes": CONCURRENT_SIZE,
        },
    }


def _with_percentiles(result: tuple[float, list[float]]) -> tuple[float, float, float]:
    rate, latencies = result
    return rate, _latency_ms(latencies, 50), _latency_ms(latencies, 99)


# -- driver ------------------------------------------------------------------------------------


def shares(total: int, parts: int) -> list[int]:
    """`total` split into at most `parts` near-equal positive shares."""
    parts = max(1, min(parts, total))
    whole, extra = divmod(total, parts)
    return [whole + (i < extra) for i in range(parts)]


def add_timed(total: list[float], run: Callable[[], Timed]) -> None:
    """Add one run's operations, seconds and this process's CPU seconds to `total`."""
    cpu = time.process_time()
    ops, seconds = run()
    total[0] += ops
    total[1] += seconds
    total[2] += time.process_time() - cpu


def run_rounds(
    columns: list[Column],
    size: int,
    rounds: int,
    keys: list[str],
    log: Callable[[str], None],
    between_rounds: Callable[[], None] = lambda: None,
    slices: int = SLICES,
) -> dict[str, dict[str, list[float]]]:
    pairs, batches = WORK[size]
    value = os.urandom(size)
    results: dict[str, dict[str, list[float]]] = {
        c.name: {"seq": [], "pipe": [], "seq_cpu": [], "pipe_cpu": []} for c in columns
    }
    for column in columns:  # warm-up: connections, name memo, correctness
        column.check(keys[0], value)
        column.seq(keys, value, max(10, pairs // 10))
        column.pipe(keys, value, 1)
    seq_shares, pipe_shares = shares(pairs, slices), shares(batches, slices)
    n = len(keys)

    for index in range(rounds):
        between_rounds()
        # Per column and mode, summed over the round's slices: operations, seconds, and this
        # process's CPU seconds (what the column costs the client side, which the load of a
        # shared machine inflates far less than its rate).
        sums = {(c.name, mode): [0.0, 0.0, 0.0] for c in columns for mode in ("seq", "pipe")}

        # A round runs every column's work in slices, the columns taking turns slice by slice
        # (tens of milliseconds each), in the reverse order every other slice, so that no
        # column is always measured after another. The machine's speed drifts over seconds
        # (other tenants of the VM, the server's fsync every second): whole-column runs put
        # that drift between the columns compared, slices spread it over all of them alike.
        # `--slices 1` measures each column's work in one piece, as before 2026-12-02.
        for part in range(max(len(seq_shares), len(pipe_shares))):
            order = columns if (index + part) % 2 == 0 else columns[::-1]
            # Every slice starts where the last one stopped, so each round cycles all keys.
            offset = sum(seq_shares[:part]) % n
            turned = keys[offset:] + keys[:offset]
            for column in order:
                if part < len(seq_shares):
                    add_timed(
                        sums[column.name, "seq"],
                        partial(column.seq, turned, value, seq_shares[part]),
                    )
                if part < len(pipe_shares):
                    add_timed(
                        sums[column.name, "pipe"],
                        partial(column.pipe, keys, value, pipe_shares[part]),
                    )
        for (name, mode), (ops, seconds, cpu) in sums.items():
            results[name][mode].append(ops / seconds)
            results[name][f"{mode}_cpu"].append(cpu / ops * 1e6)
        log(
            f"bench: {size // 1024} KiB round {index + 1}/{rounds}: "
            + " ".join(
                f"client/{versus} {mode} "
                f"{results['client'][mode][-1] / results[versus][mode][-1]:.2f}"
                for versus in ("baseline", "tls_transport")
                for mode in ("seq", "pipe")
            )
        )
    return results


def ratios(
    results: dict[str, dict[str, list[float]]], column: str, mode: str, versus: str = "baseline"
) -> list[float]:
    """Per round: `column` / `versus`, both measured in the same round."""
    return [c / b for c, b in zip(results[column][mode], results[versus][mode], strict=True)]


def cold_name_ratio(baseline: Baseline, client: Client, rounds: int) -> list[float]:
    keys = [f"cold:{i}" for i in range(COLD_KEYS)]
    value = os.urandom(1024)
    pairs = COLD_KEYS // 4
    out = []
    for index in range(rounds):
        offset = index * pairs
        rotated = keys[offset % COLD_KEYS :] + keys[: offset % COLD_KEYS]
        if index % 2 == 0:
            b = baseline.seq(rotated, value, pairs)
            c = client.seq(rotated, value, pairs)
        else:
            c = client.seq(rotated, value, pairs)
            b = baseline.seq(rotated, value, pairs)
        out.append((c[0] / c[1]) / (b[0] / b[1]))
    return out


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _whole(text: str) -> int:
    """An option's whole number in the digits 0-9 (int() reads fullwidth ones too)."""
    try:
        return whole_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:20]!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="scripts/bench.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=_whole, default=7, help="interleaved rounds (>= 5)")
    parser.add_argument(
        "--slices",
        type=_whole,
        default=SLICES,
        help=f"slices per round in which the columns take turns (default {SLICES}; 1: each "
        "column's work in one piece)",
    )
    parser.add_argument(
        "--only",
        choices=("sizes", "concurrency"),
        help="run one part: the per-size columns, or the many-callers mode (default: both)",
    )
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="split",
        help="where the bench and its servers run (scripts/cpu_placement.py): split (default: "
        "servers on the last CPU, the bench on the first), shared (all on the first) or free "
        "(the scheduler's choice)",
    )
    parser.add_argument(
        "--allocator",
        choices=("service", "default"),
        default="service",
        help="glibc heap thresholds for the whole process, every column alike: as the service "
        "sets them (secure_cache.allocator, the default) or glibc's own",
    )
    args = parser.parse_args(argv)
    if args.rounds < 5:
        parser.error("--rounds must be at least 5: the ratios are medians of interleaved rounds")
    if args.slices < 1:
        parser.error("--slices must be at least 1")
    available = os.sched_getaffinity(0)
    try:
        cpus = plan(args.placement, available)
    except PlacementError as error:
        parser.error(str(error))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # SIGTERM (kill, timeout) and SIGHUP (a closed terminal) end the run as Ctrl-C does: the
    # servers' `with` blocks stop them and remove their directories (data, certificates and
    # keys). The signals' default action left both redis-servers running and the keys on disk.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)

    # Before any column allocates: the thresholds apply to the whole process, so every column
    # runs under the same allocator, the one the service runs under unless asked otherwise.
    tuned = args.allocator == "service" and keep_freed_memory()
    # Before the servers and any thread start: what this process starts inherits its CPUs.
    pin(os.getpid(), cpus.bench)
    log(f"bench: placement {cpus.describe()}")
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    with tls_server(cpus.servers) as server:
        if args.only != "concurrency":
            summary.update(measure_sizes(server, args.rounds, args.slices, log, cpus.servers))
        if args.only != "sizes":
            summary.update(run_concurrency(server, args.rounds, log))
    summary["rounds"] = args.rounds
    summary["slices"] = args.slices
    summary["environment"] = {
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "cpus": os.cpu_count(),
        "cpus_available": len(available),  # this process's affinity before it was pinned
        "peer": "py-key-value-aio 0.4.6, explicit redis.asyncio TLS client",
        "async_concurrent_loop": f"uvloop {importlib.metadata.version('uvloop')}",
        "placement": cpus.describe(),
        "allocator": (
            f"glibc trim {TRIM_THRESHOLD_BYTES >> 20} MiB, mmap {MMAP_THRESHOLD_BYTES >> 20} MiB"
            if tuned
            else "default"
        ),
    }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["goals_missed"] = missed(goals(summary))  # the targets: scripts/bench_goals.py
    summary["goals_met"] = not summary["goals_missed"]
    print_report(summary)
    say(json.dumps(summary, separators=(",", ":")))
    return 0


def measure_sizes(
    server: TlsRedisServer,
    rounds: int,
    slices: int,
    log: Callable[[str], None],
    server_cpus: frozenset[int],
) -> dict[str, Any]:
    """Every column at every size, interleaved rounds; the per-size part of the summary."""
    table: dict[int, dict[str, float]] = {}
    all_results: dict[int, dict[str, dict[str, list[float]]]] = {}
    with plaintext_server(server_cpus) as plain_port:
        admins = [
            redis.Redis(port=plain_port),
            server.app_redis(username=ADMIN_USER, password=ADMIN_PASSWORD),
        ]
        log("bench: servers ready (plaintext and TLS); warming up the columns")
        baseline, client = Baseline(plain_port), Client(server)
        columns: list[Column] = [
            baseline,
            client,
            TlsTransport(server),
            TlsAes(server),
            Seeds(server),
            Peer(server),
        ]
        try:
            for size in SIZES:
                keys = [f"cache:bench:{size}:{i}" for i in range(KEYS)]
                results = run_rounds(
                    columns, size, rounds, keys, log, partial(settle, admins), slices
                )
                all_results[size] = results
                table[size] = {
                    f"{column.name}_{mode}": statistics.median(results[column.name][mode])
                    for column in columns
                    for mode in ("seq", "pipe")
                }
                pairs, batches = WORK[size]
                table[size]["ceiling_seq"] = redis_benchmark(server, size, 1, max(2000, pairs * 2))
                table[size]["ceiling_pipe"] = redis_benchmark(
                    server, size, KEYS, max(20_000, batches * 200)
                )
            cold = cold_name_ratio(baseline, client, 5)
        finally:
            for column in columns:
                column.close()
            for admin in admins:
                admin.close()
    enc_us = encrypt_decrypt_us()
    connects = connect_ms(server)
    connects_default = connect_ms_redis_py(server)

    one_k = all_results[1024]
    seq, pipe = ratios(one_k, "client", "seq"), ratios(one_k, "client", "pipe")

    def by_size(versus: str, column: str = "client") -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for size in SIZES:
            row: dict[str, Any] = {}
            for mode in ("seq", "pipe"):
                r = ratios(all_results[size], column, mode, versus)
                row[mode] = round(statistics.median(r), 3)
                row[f"{mode}_spread"] = [round(min(r), 3), round(max(r), 3)]
            out[f"{size // 1024}KiB"] = row
        return out

    return {
        "ratio_sequential": round(statistics.median(seq), 3),
        "ratio_pipelined": round(statistics.median(pipe), 3),
        "ratio_sequential_spread": [round(min(seq), 3), round(max(seq), 3)],
        "ratio_pipelined_spread": [round(min(pipe), 3), round(max(pipe), 3)],
        "ratio_sequential_rounds": [round(r, 3) for r in seq],
        "ratio_pipelined_rounds": [round(r, 3) for r in pipe],
        "ratio_sequential_cold_names": round(statistics.median(cold), 3),
        "encrypt_decrypt_us_1k": round(enc_us, 2),
        # One seal + open of 100 KiB: the AES-GCM passes the application layer adds to TLS's.
        "encrypt_decrypt_us_100k": round(encrypt_decrypt_us(100 * 1024, 300), 1),
        "key_name_us": round(key_name_us(), 2),
        "fernet_encrypt_decrypt_us_1k": round(fernet_us(), 2),
        "connect_ms_p50": round(statistics.median(connects), 2),
        "connect_ms_p90": round(statistics.quantiles(connects, n=10)[-1], 2),
        "connect_ms_p50_redis_py_defaults": round(statistics.median(connects_default), 2),
        "seeds_ratio_sequential": round(statistics.median(ratios(one_k, "seeds", "seq")), 3),
        "seeds_ratio_pipelined": round(statistics.median(ratios(one_k, "seeds", "pipe")), 3),
        "peer_ratio_sequential": round(statistics.median(ratios(one_k, "peer", "seq")), 3),
        "peer_ratio_pipelined": round(statistics.median(ratios(one_k, "peer", "pipe")), 3),
        "ops_per_s": {
            f"{size // 1024}KiB": {k: round(v) for k, v in row.items()}
            for size, row in table.items()
        },
        "ratios_by_size": by_size("baseline"),
        "ratio_vs_tls_transport": by_size("tls_transport"),
        # The best ratio_vs_tls_transport an application-layer AES-256-GCM allows here, and
        # how far the client is from it (TlsAes).
        "aes_floor_vs_tls_transport": by_size("tls_transport", column="tls_aes"),
        "ratio_vs_tls_aes": by_size("tls_aes"),
        "client_cpu_us_per_op": {
            f"{size // 1024}KiB": {
                mode: {
                    column: round(statistics.median(all_results[size][column][f"{mode}_cpu"]), 1)
                    for column in ("baseline", "client", "tls_transport", "tls_aes")
                }
                for mode in ("seq", "pipe")
            }
            for size in SIZES
        },
    }


def print_report(summary: dict[str, Any]) -> None:
    if "ops_per_s" in summary:
        print_sizes(summary)
    if "concurrent_ops_per_s" in summary:
        print_concurrency(summary)
    say(f"\nTotal {summary['seconds']} s, {summary['rounds']} interleaved rounds.")
    say(
        "Goals: all held."
        if summary["goals_met"]
        else "Goals missed: " + "; ".join(summary["goals_missed"]) + "."
    )


def print_sizes(summary: dict[str, Any]) -> None:
    columns = ("baseline", "client", "tls_transport", "tls_aes", "seeds", "peer", "ceiling")
    say(
        "| size | mode | "
        + " | ".join(columns)
        + " | client / baseline | client / tls_transport | tls_aes / tls_transport |\n"
        + "|---|---|"
        + "---:|" * (len(columns) + 3)
    )
    for size_label, row in summary["ops_per_s"].items():
        for mode, label in (("seq", "sequential"), ("pipe", "pipelined x100")):
            cells = [f"{row[f'{c}_{mode}']:,.0f}" for c in columns]
            plain = summary["ratios_by_size"][size_label][mode]
            tls = summary["ratio_vs_tls_transport"][size_label][mode]
            floor = summary["aes_floor_vs_tls_transport"][size_label][mode]
            say(
                f"| {size_label[:-3]} KiB | {label} | "
                + " | ".join(cells)
                + f" | {plain:.2f} | {tls:.2f} | {floor:.2f} |"
            )
    say(
        f"\nops/s, medians of {summary['rounds']} interleaved rounds. "
        f"1 KiB client/baseline: sequential {summary['ratio_sequential']} "
        f"(spread {summary['ratio_sequential_spread']}), pipelined {summary['ratio_pipelined']} "
        f"(spread {summary['ratio_pipelined_spread']}); sequential with cold key names "
        f"{summary['ratio_sequential_cold_names']}.\n"
        f"AES-GCM seal+open 1 KiB {summary['encrypt_decrypt_us_1k']} us, 100 KiB "
        f"{summary['encrypt_decrypt_us_100k']} us "
        f"(Fernet {summary['fernet_encrypt_decrypt_us_1k']} us); key name "
        f"{summary['key_name_us']} us; new connection (TCP+TLS+AUTH+PING) p50 "
        f"{summary['connect_ms_p50']} ms (redis-py defaults "
        f"{summary['connect_ms_p50_redis_py_defaults']} ms)."
    )
    say(
        "\nClient-side CPU per operation (us, this process; medians), client vs tls_transport "
        "and what the application layer adds:\n| size | mode | baseline | client | "
        "tls_transport | tls_aes | client - tls_transport |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for size_label, modes in summary["client_cpu_us_per_op"].items():
        for mode, label in (("seq", "sequential"), ("pipe", "pipelined x100")):
            cpu = modes[mode]
            say(
                f"| {size_label[:-3]} KiB | {label} | {cpu['baseline']} | {cpu['client']} | "
                f"{cpu['tls_transport']} | {cpu['tls_aes']} | "
                f"{cpu['client'] - cpu['tls_transport']:.1f} |"
            )


def print_concurrency(summary: dict[str, Any]) -> None:
    c = summary["concurrency"]
    say(
        f"\n{c['value_bytes'] // 1024} KiB SET+GET, many callers on one client "
        f"({c['tasks']} asyncio tasks; {c['threads']} threads) and redis-benchmark with "
        f"{c['tasks']} connections over the same mTLS + ACL:\n"
        "| caller | ops/s | spread | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|"
    )
    for name, rate in summary["concurrent_ops_per_s"].items():
        low, high = summary["concurrent_ops_per_s_spread"][name]
        latency = summary["concurrent_latency_ms"][name]
        say(f"| {name} | {rate:,} | {low:,}-{high:,} | {latency['p50']} | {latency['p99']} |")
    say(
        f"async client / redis-benchmark -c {c['tasks']}: {summary['ratio_vs_ceiling_c50']} "
        f"(spread {summary['ratio_vs_ceiling_c50_spread']}). redis-benchmark sends one "
        "command per round trip on each connection; the async client coalesces the calls of "
        "its tasks into shared writes, so it can pass it. Client CPU per operation (us): "
        + ", ".join(f"{k} {v}" for k, v in summary["concurrent_client_cpu_us_per_op"].items())
        + "."
    )


if __name__ == "__main__":
    sys.exit(main())
