"""The secure-redis policy pack: `pulumi preview --policy-pack policies`.

The engine starts it as `python -m pulumi.policy <engine address> .` in this directory;
`PolicyPack(...)` then serves pulumi_policy's analyzer gRPC interface, prints its port and
blocks. `python -m policies.check` starts it the same way. Every policy is a rule from
`policies/rules/`, wrapped by `policies/pack.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The engine puts this directory, not the repository, on sys.path; the rules are imported as
# the `policies` package, so make the repository importable first.
_REPOSITORY = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.pack import PACK_DESCRIPTION, PACK_NAME, policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description=PACK_DESCRIPTION,
)
