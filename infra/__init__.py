"""The secure-redis Pulumi program and the pure libraries it is built from."""
