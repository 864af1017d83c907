"""The secure-redis Pulumi program and the pure libraries it is built from."""

from infra.interpreter import require_project_packages

require_project_packages("infra")
