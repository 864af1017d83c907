"""secure-redis: one stack (dev, prod, ...) on a Docker engine.

Deploys, per stack S:
- networks `secure-redis-S-backend` (internal: Redis + app) and `secure-redis-S-frontend` (app);
- TLS material: the stack's own CA, the Redis server certificate, client certificates for the
  app and the health check (dynamic resources, renewed by `pulumi up` before they expire);
- secrets: the ACL passwords and the app's data keyring (generated, kept secret in state);
- Redis `secure-redis-S-redis`: TLS only, ACL-locked, read-only, no published port;
- the cache app `secure-redis-S-app`: HTTP on 127.0.0.1 only.
Settings come from Pulumi.S.yaml (profile per environment) and are validated before any
resource is declared.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this directory (`main: infra/`) with infra/ as the working directory; the program
# imports `infra.*`, so the project root must be importable.
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

import pulumi  # noqa: E402
from pulumi.runtime.settings import get_monitor  # noqa: E402

from infra.settings import settings_from_pulumi  # noqa: E402
from infra.stack import (  # noqa: E402
    build_stack,
    require_build_inputs,
    require_stack_unlocked,
)

if get_monitor() is None:
    # Run directly (`python -m infra`), not by a Pulumi engine: there is no stack to deploy to.
    print(
        "infra: error: infra/ is the Pulumi program: deploy it with `pulumi up` (or "
        "scripts/setup-secure-redis.sh), render it offline with "
        "`python -m infra.preview --stack dev`",
        file=sys.stderr,
    )
    sys.exit(2)
settings = settings_from_pulumi()
# Before the first resource is declared: the engine starts a resource's step when it is.
require_build_inputs(settings.stack)
require_stack_unlocked(settings.stack)
built = build_stack(settings)
for _name, _value in built.exports.items():
    pulumi.export(_name, _value)
