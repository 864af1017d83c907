"""Pulumi dynamic resources over the pure PKI and secret libraries (no provider plugin)."""

from infra.pulumi_internals import bound_provider_serialization

bound_provider_serialization()
