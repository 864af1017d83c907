"""The secure-redis Pulumi program and the pure libraries it is built from."""

# First, before any import that takes time (infra/quiet_start.py says why).
from infra.quiet_start import quiet_while_starting

quiet_while_starting()

from infra.interpreter import require_project_packages  # noqa: E402

require_project_packages("infra")
