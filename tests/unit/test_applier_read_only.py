"""engine.py `reading_only`: the client `plan` asks the engine with refuses, before sending
it, every request that could change the engine, and sends the reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from requests.exceptions import ConnectionError as NoConnection

from infra.applier.engine import WriteRefused, reading_only


@pytest.fixture
def client(tmp_path: Path) -> docker.DockerClient:
    # A fixed API version: the SDK asks the engine for none, so nothing is sent on creation.
    return reading_only(
        docker.DockerClient(base_url=f"unix://{tmp_path}/no-engine.sock", version="1.41")
    )


@pytest.mark.parametrize(
    "write",
    [
        lambda api: api.update_container("sr-x-redis", mem_limit="1g"),
        lambda api: api.remove_container("sr-x-redis", force=True),
        lambda api: api.connect_container_to_network("sr-x-redis", "bridge"),
        lambda api: api.create_container("debian:bookworm-slim", name="x"),
        lambda api: api.put_archive("sr-x-redis", "/", b""),
        lambda api: api.tag("debian:bookworm-slim", "sr-x-app", "t"),
        lambda api: api.stop("sr-x-redis"),
    ],
)
def test_reading_only__refuses_a_write_before_sending_it(
    client: docker.DockerClient, write: Callable[[Any], object]
) -> None:
    with pytest.raises(WriteRefused, match="plan only reads the engine; it was about to send"):
        write(client.api)


@pytest.mark.parametrize(
    "read",
    [
        lambda api: api.inspect_container("sr-x-redis"),
        lambda api: api.get_archive("sr-x-redis", "/mat"),
        lambda api: api.inspect_image("sr-x-app:t"),
        lambda api: api.inspect_network("sr-x-b"),
        lambda api: api.ping(),
    ],
)
def test_reading_only__sends_the_reads(
    client: docker.DockerClient, read: Callable[[Any], object]
) -> None:
    with pytest.raises(NoConnection):  # sent: no engine answers at that socket
        read(client.api)
