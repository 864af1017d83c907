"""A hand-written, secure pulumi-docker stack that shares nothing with this project.

Other names, no labels, the official image pinned by digest (its version beside it), every
Redis setting only in an uploaded redis.conf (none on argv), a client using a CACHE_URL: if the
pack judged by our names, labels or argv layout, this stack would fail. Tests derive insecure
variants from it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

from infra import pki
from policies.records import Record, parse_records
from policies.rules._model import CONTAINER, NETWORK, REMOTE_IMAGE, VOLUME
from tests.policy.support import generated_password

STACK: Final = "prod"
PROJECT: Final = "shop"
# The version beside the digest: a digest alone names none, and from Redis 8 the official
# image's entrypoint loads modules (docs/policy.md).
REDIS_IMAGE: Final = "docker.io/library/redis:7.4.2@sha256:" + "a" * 64
WEB_IMAGE: Final = "registry.example.com/shop/web@sha256:" + "b" * 64

# Generated per run: a committed literal would be a (fake) secret in the repository.
WEB_PASSWORD: Final = generated_password(18)
PROBE_PASSWORD: Final = generated_password(18)

REDIS_CONF: Final = """\
# shop cache: TLS only
port 0
tls-port 6380
tls-cert-file /secrets/tls.crt
tls-key-file /secrets/tls.key
tls-ca-cert-file /secrets/ca.crt
tls-auth-clients yes
tls-protocols "TLSv1.3"
tls-prefer-server-ciphers yes
tls-ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256
aclfile /secrets/users.acl
protected-mode yes
enable-protected-configs no
enable-debug-command no
enable-module-command no
maxmemory 256mb
maxmemory-policy allkeys-lfu
proto-max-bulk-len 4mb
client-output-buffer-limit normal 64mb 32mb 60
databases 1
dir /data
"""


def _hash(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


ACL: Final = (
    "user default off resetkeys resetchannels -@all\n"
    f"user web on {_hash(WEB_PASSWORD)} resetkeys ~shop:* resetchannels "
    "-@all +get +set +del +mget +ping\n"
    f"user probe on {_hash(PROBE_PASSWORD)} resetkeys resetchannels -@all +ping\n"
)


@functools.cache
def material() -> dict[str, bytes]:
    """Real certificates (generated once per test session)."""
    ca = pki.create_ca("shop CA", validity_days=30)
    server = pki.issue_server_certificate(ca, "cache", dns_names=["cache"], validity_days=30)
    client = pki.issue_client_certificate(ca, "web", validity_days=30)
    return {
        "ca.crt": ca.cert_pem,
        "ca.key": ca.key_pem,
        "tls.crt": server.cert_pem,
        "tls.key": server.key_pem,
        "client.crt": client.cert_pem,
        "client.key": client.key_pem,
    }


def _hardening(user: str) -> dict[str, Any]:
    return {
        "user": user,
        "capabilities": {"drops": ["ALL"]},
        "securityOpts": ["no-new-privileges"],
        "memory": 64,
        "memorySwap": 64,
        "cpus": "0.25",
        "logDriver": "local",
        "logOpts": {"max-size": "5m"},
        "ulimits": [{"name": "nproc", "soft": 64, "hard": 64}],
    }


def _loader(volume: str, files: dict[str, tuple[str, str]], user: str) -> dict[str, Any]:
    return {
        **_hardening(user),
        "image": REDIS_IMAGE,
        "command": ["sh", "-c", "cp -p /stage/* /out/"],
        "attach": True,
        "mustRun": False,
        "restart": "no",
        "networkMode": "none",
        "healthcheck": {"tests": ["CMD", "true"]},
        "mounts": [{"type": "volume", "source": volume, "target": "/out"}],
        "uploads": [
            {"file": f"/stage/{name}", "content": content, "permissions": mode}
            for name, (content, mode) in files.items()
        ],
    }


def raw() -> list[dict[str, Any]]:
    m = {k: v.decode() for k, v in material().items()}
    cache = {
        **_hardening("71001:71001"),
        "name": "shop-prod-cache",
        "image": REDIS_IMAGE,
        "command": ["redis-server", "/secrets/redis.conf"],
        "readOnly": True,
        # Twice maxmemory (256mb) plus the program's headroom (infra/redis_conf.py
        # min_memory_limit_mb, 605 MB here): room for the persistence fork (REDIS-15).
        "memory": 620,
        "memorySwap": 620,
        "restart": "on-failure",
        "maxRetryCount": 3,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=8m"},
        "networksAdvanced": [{"name": "shop-prod-cache", "aliases": ["cache"]}],
        "mounts": [
            {"type": "volume", "source": "shop-prod-cache-secrets", "target": "/secrets",
             "readOnly": True},
            {"type": "volume", "source": "shop-prod-cache-data", "target": "/data"},
        ],
        "healthcheck": {"tests": [
            "CMD-SHELL",
            'REDISCLI_AUTH="$(cat /secrets/probe.pw)" redis-cli --tls --cacert /secrets/ca.crt '
            "--cert /secrets/probe.crt --key /secrets/probe.key -p 6380 --user probe ping",
        ]},
    }  # fmt: skip
    web = {
        **_hardening("71002:71002"),
        "name": "shop-prod-web",
        "image": WEB_IMAGE,
        "readOnly": True,
        "restart": "on-failure",
        "maxRetryCount": 5,
        "envs": ["CACHE_URL=rediss://cache:6380/0", "CACHE_PASSWORD_FILE=/run/shop/cache.pw"],
        "ports": [{"internal": 8000, "external": 8443, "ip": "127.0.0.1"}],
        "networksAdvanced": [{"name": "shop-prod-cache"}, {"name": "shop-prod-edge"}],
        "mounts": [{"type": "volume", "source": "shop-prod-web-secrets", "target": "/run/shop",
                    "readOnly": True}],
        "healthcheck": {"tests": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8000/health"]},
    }  # fmt: skip
    cache_files = {
        "redis.conf": (REDIS_CONF, "0444"),
        "users.acl": (ACL, "0400"),
        "ca.crt": (m["ca.crt"], "0444"),
        "tls.crt": (m["tls.crt"], "0444"),
        "tls.key": (m["tls.key"], "0400"),
        "probe.pw": (PROBE_PASSWORD, "0400"),
    }
    web_files = {
        "ca.crt": (m["ca.crt"], "0444"),
        "client.crt": (m["client.crt"], "0444"),
        "client.key": (m["client.key"], "0400"),
        "cache.pw": (WEB_PASSWORD, "0400"),
    }
    secret = {"additionalSecretOutputs": ["uploads"]}
    return [
        {"type": NETWORK, "name": "cache-net",
         "props": {"name": "shop-prod-cache", "driver": "bridge", "internal": True}},
        {"type": NETWORK, "name": "edge-net", "props": {"name": "shop-prod-edge"}},
        {"type": VOLUME, "name": "cache-secrets", "props": {"name": "shop-prod-cache-secrets"}},
        {"type": VOLUME, "name": "cache-data", "props": {"name": "shop-prod-cache-data"}},
        {"type": VOLUME, "name": "web-secrets", "props": {"name": "shop-prod-web-secrets"}},
        {"type": REMOTE_IMAGE, "name": "redis-image", "props": {"name": "redis:7.2.4"}},
        {"type": CONTAINER, "name": "cache-loader", "options": secret,
         "props": _loader("shop-prod-cache-secrets", cache_files, "71001:71001")},
        {"type": CONTAINER, "name": "web-loader", "options": secret,
         "props": _loader("shop-prod-web-secrets", web_files, "71002:71002")},
        {"type": CONTAINER, "name": "cache", "props": cache},
        {"type": CONTAINER, "name": "web", "props": web},
    ]  # fmt: skip


def records(items: list[dict[str, Any]] | None = None) -> list[Record]:
    return parse_records(raw() if items is None else items, source="shop", stack=STACK,
                         project=PROJECT)  # fmt: skip
