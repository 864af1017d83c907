"""The Redis image builds, and the rendered Redis containers run and become healthy.

Renders each stack, then starts by hand (docker SDK) exactly what it declares, under unique
names: the material init container (files uploaded as pulumi-docker does: one tar extracted at
`/` with each file's mode and owner) filling a fresh volume, then Redis with the rendered
command, read-only root, all capabilities dropped, the stack's redis uid, on a fresh internal
network. Redis must report healthy through the rendered TLS health check; a client on the
same network must get in with the app's certificate and password, and only within its ACL.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.naming import Role
from infra.pulumi_names import IMAGE
from infra.render import RenderedResource, RenderedStack, render_stack
from infra.runtime_ids import runtime_id
from tests.support.image_builds import image_build

docker = pytest.importorskip("docker")

HEALTH_TIMEOUT_S = 90.0
STAGING = "/run/secure-redis-init"


def _docker_client() -> Any:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.skip(f"Docker engine unavailable ({exc}); run scripts/bootstrap.sh to start it")
    return client


@pytest.fixture(scope="module")
def client() -> Any:
    return _docker_client()


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request: pytest.FixtureRequest) -> RenderedStack:
    return render_stack(request.param)


@pytest.fixture(scope="module")
def suffix(rendered: RenderedStack) -> str:
    return f"{rendered.stack}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def redis_image(client: Any, rendered: RenderedStack, suffix: str) -> Iterator[str]:
    image = next(r for r in rendered.of_type(IMAGE) if r.name == "redis-image")
    build = image.props["build"]
    tag = f"secure-redis-itest-redis:{suffix}"
    with image_build():
        built, _ = client.images.build(
            path=build["context"],
            dockerfile=build["dockerfile"],
            # Labelled as its own stack, so a concurrent teardown of the real one leaves it alone.
            buildargs={**build["args"], "SECURE_REDIS_STACK": "itest"},
            tag=tag,
            rm=True,
        )
    yield str(built.id)
    # Keep the untagged layers: they are the build cache for the next run.
    client.images.remove(tag, noprune=True)


@pytest.fixture(scope="module")
def deployed(
    client: Any, rendered: RenderedStack, redis_image: str, suffix: str
) -> Iterator[dict[str, Any]]:
    created: list[Any] = []
    init_props = rendered.named(f"secure-redis-{rendered.stack}-redis-init").props
    redis_props = rendered.named(f"secure-redis-{rendered.stack}-redis").props
    network = client.networks.create(
        f"secure-redis-itest-{suffix}-backend", driver="bridge", internal=True
    )
    volumes = {
        # Named apart from the real stack's objects (secure-redis-<stack>-*), like all of ours.
        mount["source"]: client.volumes.create(
            mount["source"].replace(
                f"secure-redis-{rendered.stack}-", f"secure-redis-itest-{suffix}-"
            )
        )
        for mount in redis_props["mounts"]
    }
    try:
        init = client.containers.create(
            redis_image,
            **_container_kwargs(init_props, volumes),
            name=f"secure-redis-itest-{suffix}-redis-init",
        )
        created.append(init)
        init.put_archive("/", _uploads_tar(init_props["uploads"]))
        init.start()
        exit_status = init.wait(timeout=60)
        assert exit_status["StatusCode"] == 0, init.logs().decode(errors="replace")
        # Keys and passwords moved into the volume: none is left in the exited container.
        stream, _ = init.get_archive(STAGING)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as staged:
            left = [m.name for m in staged.getmembers() if m.isfile()]
        assert left == [], f"files left staged in the init container: {left}"
        (backend,) = redis_props["networksAdvanced"]
        redis = client.containers.create(
            redis_image,
            **_container_kwargs(redis_props, volumes),
            name=f"secure-redis-itest-{suffix}-redis",
            network=network.name,
            networking_config={
                network.name: client.api.create_endpoint_config(aliases=backend["aliases"])
            },
        )
        created.append(redis)
        redis.start()
        yield {"redis": redis, "network": network, "volumes": volumes, "image": redis_image}
    finally:
        for container in reversed(created):
            container.remove(force=True, v=True)
        network.remove()
        for volume in volumes.values():
            volume.remove(force=True)


def _container_kwargs(props: dict[str, Any], volumes: dict[str, Any]) -> dict[str, Any]:
    """The docker SDK arguments for a rendered pulumi-docker Container (the subset used)."""
    kwargs: dict[str, Any] = {
        "command": props.get("command"),
        "entrypoint": props.get("entrypoints"),
        "user": props["user"],
        "read_only": bool(props.get("readOnly", False)),
        "cap_drop": props["capabilities"]["drops"],
        "security_opt": props["securityOpts"],
        "mem_limit": f"{props['memory']}m",
        "memswap_limit": f"{props['memorySwap']}m",
        "nano_cpus": int(float(props["cpus"]) * 1e9),
        # The declared labels, but never the deployed stack's: `teardown.sh dev` running at the
        # same time must not see (and remove) this test's containers.
        "labels": {
            item["label"]: item["value"]
            for item in props["labels"]
            if item["label"] != "io.secure-redis.stack"
        }
        | {"io.secure-redis.stack": "itest"},
        "tmpfs": props.get("tmpfs") or {},
        "mounts": [
            docker.types.Mount(
                target=m["target"],
                source=volumes[m["source"]].name,
                type="volume",
                read_only=bool(m.get("readOnly", False)),
            )
            for m in props.get("mounts", [])
        ],
        "privileged": bool(props.get("privileged", False)),
    }
    if "networkMode" in props:
        kwargs["network_mode"] = props["networkMode"]
    if "healthcheck" in props:
        check = props["healthcheck"]
        durations = {"interval": "interval", "timeout": "timeout", "startPeriod": "start_period"}
        kwargs["healthcheck"] = {
            "test": check["tests"],
            "retries": check.get("retries", 0),
            **{sdk: _nanoseconds(check[key]) for key, sdk in durations.items() if key in check},
        }
    return kwargs


def _nanoseconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, f"unsupported duration {duration!r}"
    factor = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9}[match.group(2)]
    return int(match.group(1)) * factor


def _uploads_tar(uploads: list[dict[str, Any]]) -> bytes:
    """One tar extracted at `/`, like pulumi-docker's uploads: mode, uid and gid per file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for upload in uploads:
            data = upload["content"].encode()
            info = tarfile.TarInfo(upload["file"].lstrip("/"))
            info.size = len(data)
            info.mode = int(upload["permissions"], 8)
            info.uid = int(upload["owner"])
            info.gid = int(upload["group"])
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait_healthy(container: Any) -> str:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    status = "starting"
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        status = state.get("Health", {}).get("Status", "none")
        if status == "healthy" or not state["Running"]:
            break
        time.sleep(1)
    return status


def _redis_user(rendered: RenderedStack) -> str:
    uid = runtime_id(rendered.stack, Role.REDIS)
    return f"{uid}:{uid}"


def test_redis_image__runs_as_the_stacks_redis_uid_with_a_healthcheck(
    client: Any, rendered: RenderedStack, redis_image: str
) -> None:
    config = client.images.get(redis_image).attrs["Config"]
    want = _redis_user(rendered)
    assert config["User"] == want, f"image runs as {config['User']!r}, not the redis uid {want}"
    assert config["Healthcheck"]["Test"][0] == "CMD-SHELL", "image must carry a HEALTHCHECK"
    assert config["Labels"]["io.secure-redis.role"] == "redis"
    # The stack label comes from the build argument (this test builds as stack "itest").
    assert config["Labels"]["io.secure-redis.stack"] == "itest"


def test_rendered_redis__becomes_healthy(deployed: dict[str, Any]) -> None:
    redis = deployed["redis"]
    status = _wait_healthy(redis)
    logs = redis.logs(tail=30).decode(errors="replace")
    assert status == "healthy", f"redis health is {status!r}; last log lines:\n{logs}"


def test_rendered_redis__runs_hardened(deployed: dict[str, Any], rendered: RenderedStack) -> None:
    host_config = deployed["redis"].attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    assert deployed["redis"].attrs["Config"]["User"] == _redis_user(rendered)
    assert not host_config.get("PortBindings"), "Redis must not publish a port"


def test_material_volume__has_owner_only_modes(
    client: Any, deployed: dict[str, Any], rendered: RenderedStack
) -> None:
    uid = str(runtime_id(rendered.stack, Role.REDIS))
    volume = next(v for k, v in deployed["volumes"].items() if k.endswith("redis-material"))
    listing = client.containers.run(
        deployed["image"],
        # -L: the names are symlinks into the volume's current revision (material.py).
        ["sh", "-c", "stat -L -c '%n %a %u' /m/*"],
        mounts=[docker.types.Mount(target="/m", source=volume.name, type="volume", read_only=True)],
        network_mode="none",
        cap_drop=["ALL"],
        remove=True,
    ).decode()
    modes = {Path(line.split()[0]).name: line.split()[1:] for line in listing.splitlines()}
    for name in ("server.key", "healthcheck.key", "healthcheck.password", "users.acl"):
        assert modes[name] == ["400", uid], f"{name} is {modes[name]}, want mode 400 uid {uid}"
    for name in ("ca.crt", "server.crt", "healthcheck.crt", "redis.conf"):
        assert modes[name] == ["444", uid], f"{name} is {modes[name]}, want mode 444 uid {uid}"


def _app_client_material(rendered: RenderedStack) -> dict[str, str]:
    init: RenderedResource = rendered.named(f"secure-redis-{rendered.stack}-app-init")
    return {Path(u["file"]).name: u["content"] for u in init.props["uploads"]}


def test_rendered_redis__admits_the_app_only_within_its_acl(
    client: Any, rendered: RenderedStack, deployed: dict[str, Any]
) -> None:
    assert _wait_healthy(deployed["redis"]) == "healthy"
    files = _app_client_material(rendered)
    port = rendered.settings.redis_port
    script = (
        'mkdir -p /tmp/c && cd /tmp/c && printf %s "$CA" > ca.crt && printf %s "$CRT" > app.crt '
        '&& printf %s "$KEY" > app.key && chmod 600 app.key && '
        f"cli() {{ redis-cli --tls --cacert ca.crt --cert app.crt --key app.key "
        f'-h redis -p {port} --user app --no-auth-warning "$@"; }}; '
        "cli SET cache:itest 1; cli FLUSHALL; cli SET other:key 1"
    )
    # Test-only client: the secrets go through its environment, never a deployed container's.
    output = client.containers.run(
        deployed["image"],
        ["sh", "-c", script],
        environment={
            "CA": files["ca.crt"],
            "CRT": files["app.crt"],
            "KEY": files["app.key"],
            "REDISCLI_AUTH": files["redis.password"],
        },
        network=deployed["network"].name,
        tmpfs={"/tmp": "rw,size=4m"},
        remove=True,
    ).decode()
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0] == "OK", f"app could not write its prefix: {output!r}"
    assert "NOPERM" in lines[1], f"FLUSHALL was not refused: {output!r}"
    assert "NOPERM" in lines[2], f"a key outside cache:* was not refused: {output!r}"
