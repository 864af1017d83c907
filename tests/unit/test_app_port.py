"""One port for the app's HTTP API, wherever it is written down.

The image sets it (app/Dockerfile `ENV HTTP_PORT`, `EXPOSE`), the app falls back to it
(app/secure_cache/settings.py), and the program publishes and probes it (infra/naming.py
APP_HTTP_PORT, used by infra/components/app.py and infra/rotation_probe.py). If one of them
changed alone, the published port would lead nowhere and the healthcheck and rotation probe
would ask a port nothing listens on.
"""

from __future__ import annotations

import re

from infra.naming import APP_HTTP_PORT
from infra.settings import REPO_ROOT
from secure_cache.settings import DEFAULT_HTTP_PORT

DOCKERFILE = REPO_ROOT / "app" / "Dockerfile"


def _dockerfile(pattern: str) -> list[int]:
    return [int(port) for port in re.findall(pattern, DOCKERFILE.read_text(), re.MULTILINE)]


def test_app_port__the_image_the_app_and_the_program_agree() -> None:
    assert _dockerfile(r"^\s+HTTP_PORT=(\d+)") == [APP_HTTP_PORT]
    assert _dockerfile(r"^EXPOSE (\d+)$") == [APP_HTTP_PORT]
    assert DEFAULT_HTTP_PORT == APP_HTTP_PORT
