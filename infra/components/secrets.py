"""Generated secrets: the ACL passwords (app, health check, reload job, metrics exporter,
data-key rotation pass), the
app's data keyring and its HTTP API token. Passwords rotate in two phases
(infra/providers/secrets.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from infra.providers.secrets import DataKeyring, GeneratedPassword

# Alphanumeric, so 48 characters are about 285 bits; the app requires at least 32.
API_TOKEN_LENGTH: Final = 48


@dataclass(frozen=True)
class StackSecretsArgs:
    password_length: int
    data_key_generation: int
    data_key_keep_previous: int
    password_rotation_generation: int = 0
    api_token_rotation_generation: int = 0
    api_token_retire_generation: int = 0


class StackSecrets(pulumi.ComponentResource):
    """Each stack generates its own values (SECRET-07); none is ever read from config."""

    app_password: GeneratedPassword
    healthcheck_password: GeneratedPassword
    reload_password: GeneratedPassword
    exporter_password: GeneratedPassword
    rotation_password: GeneratedPassword
    data_keyring: DataKeyring
    api_token: GeneratedPassword

    def __init__(
        self, name: str, args: StackSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:StackSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def password(suffix: str, *, keep_retired: bool = False) -> GeneratedPassword:
            return GeneratedPassword(
                f"{name}-{suffix}",
                length=args.password_length,
                rotation_generation=args.password_rotation_generation,
                keep_retired=keep_retired,
                opts=child,
            )

        self.app_password = password("app-password")
        self.healthcheck_password = password("healthcheck-password")
        # The one password whose retired value has a consumer: the reload job's second try
        # (infra/components/reload.py). Every other one, and the API token, forgets the value
        # its SET drops (infra/providers/secrets.py).
        self.reload_password = password("reload-password", keep_retired=True)
        self.exporter_password = password("exporter-password")
        self.rotation_password = password("rotation-password")
        self.data_keyring = DataKeyring(
            f"{name}-data-keyring",
            generation=args.data_key_generation,
            keep_previous=args.data_key_keep_previous,
            opts=child,
        )
        # The bearer token of the app's HTTP API (app/secure_cache/http_api.py): generated,
        # never configured, and rotated in two phases like the passwords: `value` is the token
        # handed out, `previous` stays accepted beside it (app/secure_cache/api_tokens.py)
        # through every up until apiTokenRetireGeneration reaches apiTokenRotationGeneration:
        # its clients are outside the stack, so only their operator knows when they switched.
        self.api_token = GeneratedPassword(
            f"{name}-api-token",
            length=max(API_TOKEN_LENGTH, args.password_length),
            rotation_generation=args.api_token_rotation_generation,
            retire_generation=args.api_token_retire_generation,
            opts=child,
        )
        # Only non-secret facts are registered as outputs of the component.
        self.register_outputs({"app_password_acl_hash": self.app_password.aclHash})


__all__ = ["API_TOKEN_LENGTH", "StackSecrets", "StackSecretsArgs"]
