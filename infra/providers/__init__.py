"""Pulumi dynamic resources over the pure PKI and secret libraries (no provider plugin)."""
