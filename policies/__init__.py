"""The secure-redis CrossGuard policy pack, its pure rules and its offline checker.

`policies/rules/` holds the rules as pure functions over plain property dicts; `__main__.py`
serves them to the Pulumi engine as a `pulumi_policy` pack; `check.py` drives that same pack
through its analyzer gRPC interface without the engine (`python -m policies.check`).
"""

from infra.interpreter import require_project_packages

require_project_packages("policies")
