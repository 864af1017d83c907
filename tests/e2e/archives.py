"""Files as the bytes on disk, read through the Docker engine's archive of a path (a tar
stream, what `docker cp` reads), of a container running or not, its volumes included.

Not through a container's log: the engine's log driver keeps each line as a JSON string, so
bytes that are not UTF-8 come back as U+FFFD. A tar stream read so misses files silently:
on s63 (2026-12-04) one binary file (Redis's base RDB) shifted every header after it, and
tarfile ended the archive at the first it could not read, 23 of the 41 files of the stack's
volumes read, the app's token and password among those left out.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable

import docker

from tests.e2e.probes import probe_labels

# Where volume_files mounts each volume, in a container that never runs.
_VOLUMES_AT = "/volumes"


def archive_files(client: docker.DockerClient, container: str, path: str) -> dict[str, bytes]:
    """Every regular file under `path` in the container, by its name in the archive (`path`'s
    last part, then the path below it), as the bytes on disk."""
    stream, _ = client.api.get_archive(container, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return {
            member.name: handle.read()
            for member in tar.getmembers()
            if member.isfile() and (handle := tar.extractfile(member)) is not None
        }


def volume_files(
    client: docker.DockerClient, volumes: Iterable[str], image: str, purpose: str
) -> dict[str, bytes]:
    """Every regular file of each volume, by `<volume>/<path>`, as the bytes on disk. Read from
    a container made for it (a probe, `purpose`) that is never started: no process runs with
    the volumes, which are mounted read-only; it is removed after."""
    binds = {v: {"bind": f"{_VOLUMES_AT}/{v}", "mode": "ro"} for v in volumes}
    reader = client.containers.create(
        image, volumes=binds, network_mode="none", labels=probe_labels(purpose)
    )
    try:
        files = archive_files(client, reader.id, _VOLUMES_AT)
    finally:
        reader.remove(force=True)
    top = f"{_VOLUMES_AT.lstrip('/')}/"
    return {name.removeprefix(top): data for name, data in files.items()}
