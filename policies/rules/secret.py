"""Secret handling: nothing secret in env, argv, build args or plaintext state; key files locked.

Policies receive secrets unwrapped and cannot tell a secret Output from plain text
(pulumi-policy#241), so secretness is judged structurally: by names, content (private keys,
cleartext passwords) and the `additionalSecretOutputs` option. Messages say where, never what.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from infra.proppath import string_leaves
from infra.rendered_resource import REDACTED
from policies.rules._acl import MAY_BE_EXPANDED, acl_users
from policies.rules._bitnami import marked_password
from policies.rules._environment import floor
from policies.rules._model import (
    ADVISORY,
    CONTAINER,
    DOCKER_PROVIDER,
    DYNAMIC,
    IMAGE,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
    STACK_REFERENCE,
    Resource,
    ResourceRule,
    StackRule,
    Violation,
)
from policies.rules._props import (
    entries,
    envs,
    label,
    mapping,
    number,
    reading,
    redis_label,
    text,
    text_at,
    uploads,
)
from policies.rules._redisconf import RedisServer, shell_expanded
from policies.rules._secrets import (
    _URL_WITH_PASSWORD,
    is_secret_upload,
    secret_argv,
    secret_argv_values,
    secret_env_names,
    secret_healthcheck,
    secret_label_names,
    secret_named,
    written_secrets,
)
from policies.rules._service_shape import task_containers
from policies.rules.redis import per_server, requirepass_in_force

SECRET_FILE_MODES: Final = frozenset({0o400, 0o440, 0o600})
_MIN_SHARED_SECRET: Final = 8  # shorter strings match too much by chance


def env_not_plain(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    names = secret_env_names(resource.props)
    if names:
        yield (
            f"{label(resource)} must not pass secrets in environment variables "
            f"({', '.join(sorted(set(names)))}); deliver them as files and set NAME_FILE "
            f"(CIS Docker 4.10)."
        )


def labels_not_plain(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    names = secret_label_names(resource.props)
    if names:
        yield (
            f"{label(resource)} must not carry credentials in labels ({', '.join(names)}); "
            f"labels are public metadata that docker inspect shows to anyone."
        )


def argv_not_plain(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    found = secret_argv(resource.props)
    if found:
        yield (
            f"{label(resource)} must not put secrets on its command line ({', '.join(found)}); "
            f"read them from files, as argv is visible in docker inspect and ps."
        )
    found = secret_healthcheck(resource.props)
    if found:
        yield (
            f"{label(resource)} must not put secrets in its health check ({', '.join(found)}); "
            f'read them from a file (e.g. REDISCLI_AUTH="$(cat file)").'
        )


def state_encrypted(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    carriers = {
        "uploads": any(is_secret_upload(u) for u in uploads(props)),
        "envs": bool(secret_env_names(props)),
        **written_secrets(props),
    }
    unprotected = [k for k, has in carriers.items() if has and k not in resource.secret_outputs]
    if unprotected:
        yield (
            f"{label(resource)} carries secrets in {', '.join(unprotected)}; make sure they are "
            f"secret Outputs or listed in additionalSecretOutputs, or the Pulumi state keeps "
            f"them in plain text (the pack cannot see secretness: pulumi/pulumi-policy#241)."
        )


def _mode(permissions: str | None) -> int | None:
    if permissions is None:
        return None
    try:
        return int(permissions, 8)
    except ValueError:
        return None


def upload_file_mode(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for upload in uploads(resource.props):
        if not is_secret_upload(upload):
            continue
        if _mode(upload.permissions) not in SECRET_FILE_MODES or upload.executable:
            yield (
                f"{label(resource)} must upload the secret file uploads[{upload.index}] with "
                f"permissions 0400 (or 0440/0600), not executable; unset means 0644 "
                f"(CIS Docker 3.14)."
            )


def image_build_args(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    build = mapping(resource.props.get("build"), "build")
    key_name = "args" if resource.type == IMAGE else "buildArgs"
    args = mapping(build.get(key_name), f"build.{key_name}")
    secret = sorted(
        key
        for key, value in args.items()
        if isinstance(value, str)
        and value
        and (
            secret_named(key, value)
            or _URL_WITH_PASSWORD.search(value)
            or "PRIVATE KEY-----" in value
        )
    )
    if secret:
        yield (
            f"{label(resource)} must not pass secrets as build arguments ({', '.join(secret)}); "
            f"they stay in the image history. Use build secrets (RemoteImage build.secrets)."
        )


def provider_credentials_inline(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    inline = bool(text(props.get("keyMaterial"), "keyMaterial")) or any(
        text_at(a, where, "configFileContent") or text_at(a, where, "password")
        for where, a in entries(props, "registryAuth")
    )
    if inline:
        yield (
            f"Docker provider {resource.name} should read its credentials from files "
            f"(certPath, configFile) or ssh, not inline keyMaterial or registry passwords."
        )


def _generates_passwords(resource: Resource) -> bool:
    if resource.type == RANDOM_PASSWORD:
        return True
    dynamic = any(fnmatch.fnmatchcase(resource.type, pattern) for pattern in DYNAMIC)
    return dynamic and "password" in resource.type.lower()


def password_length(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[Violation]:
    """At least the configured length, and never below the declared environment's floor: the
    passwords the stack generates, and those its Redis servers are given (REDIS-07: Redis
    answers AUTH fast, so a short password falls to guessing, whoever wrote it).

    A short generated password a Redis server is given is reported once, on the generator,
    which is what the user must change; the message names the server too."""
    minimum = floor(resources).password_minimum(
        number(config.get("minimumLength"), "policy config minimumLength")
    )
    short_generators: list[Resource] = []
    for resource in resources:
        if not _generates_passwords(resource):
            continue
        length = number(resource.props.get("length"), "length")
        if length is None or length < minimum:
            short_generators.append(resource)
    # What each short generator made: under `pulumi up` the pack sees generated values; in a
    # preview `result` is not known yet (not a string), and then neither is the server's copy.
    made = {
        result: generator
        for generator in short_generators
        if isinstance(result := generator.props.get("result"), str)
        and result
        and REDACTED not in result
    }
    uses: dict[str, dict[str, list[str]]] = {}

    def check(server: RedisServer, check_config: Mapping[str, Any]) -> Iterator[str]:
        return _server_password_length(server, check_config, made, uses)

    check.__name__ = server_password_length.__name__
    servers = list(per_server(check)(resources, config))
    for resource in short_generators:
        used = [
            f"the {' and '.join(names)} of {subject}"
            for subject, names in uses.get(resource.urn, {}).items()
        ]
        also = f" It is {' and '.join(used)}, which this length sets too." if used else ""
        yield Violation(
            f"{label(resource)} must generate passwords of at least {minimum} "
            f"characters (length) in this stack's environment; shorter ones can be guessed "
            f"at Redis's speed.{also}",
            resource.urn,
        )
    yield from servers


def server_password_length(server: RedisServer, config: Mapping[str, Any]) -> Iterator[str]:
    """requirepass (unless Redis ignores it: redis.requirepass_in_force), masterauth and enabled ACL
    users' >passwords as Redis reads them: one shorter than the minimum is guessable, however
    it came to be (`--requirepass demo`, redis.conf's example `foobared`). A value that may be
    expanded first (`$REDIS_PASSWORD`, `$(cat f)`, `{{ ... }}`) is not judged, nor a
    #<sha256> hash, nor a setting the pack cannot read (redis-auth-required fails closed on
    those)."""
    return _server_password_length(server, config, {}, {})


def _as_redis_reads(server: RedisServer, name: str) -> str | None:
    """requirepass or masterauth as redis-server gets it, where the pack can tell."""
    settings = server.settings
    value = settings.value(name) if settings.known(name) else None
    if value is not None and not server.argv_literal and settings.from_argv(name):
        # `sh -c 'redis-server --requirepass $REDIS_PASSWORD'` with REDIS_PASSWORD=... set on
        # the container (ardihikaru/eagleeye), or `${REDIS_PASSWORD:-default}`: the shell
        # hands redis-server that value.
        value = shell_expanded(value, server.resource.props, server.image) or value
    if value is not None and server.options_env.endswith("_EXTRA_FLAGS"):
        # Bitnami's setup: requirepass is written from a variable the model names, not copies.
        marked = marked_password(value, server.resource.props)
        value = value if marked is None else marked
    if not value or REDACTED in value or MAY_BE_EXPANDED.search(value):
        return None
    return value


def _server_password_length(
    server: RedisServer,
    config: Mapping[str, Any],
    made: Mapping[str, Resource],
    uses: dict[str, dict[str, list[str]]],
) -> Iterator[str]:
    """server_password_length; a value one of `made`'s short generators made is left to its
    generator's message, and recorded in `uses` (generator URN -> server -> settings)."""
    minimum = server.floor.password_minimum(
        number(config.get("minimumLength"), "policy config minimumLength")
    )
    short: list[str] = []
    # requirepass is ignored with an aclfile or a `user default` line (requirepass_in_force): no
    # client can use it, so its length guards nothing; masterauth is still sent.
    names = ("requirepass", "masterauth") if requirepass_in_force(server) else ("masterauth",)
    for name in names:
        value = _as_redis_reads(server, name)
        if value is None or len(value) >= minimum:
            continue
        generator = made.get(value)
        if generator is None:
            short.append(f"its {name}")
        else:
            subject = redis_label(server.resource, sentinel=server.sentinel)
            named = uses.setdefault(generator.urn, {}).setdefault(subject, [])
            if name not in named:  # two servers one script may start (`redis_servers`)
                named.append(name)
    rules = server.acl_rules() or []
    acl = acl_users(rules, {value: generator.urn for value, generator in made.items()})
    enabled = {name: user for name, user in acl.items() if user.enabled}
    users = sorted(n for n, u in enabled.items() if any(n < minimum for n in u.cleartext_lengths))
    for urn in sorted({urn for user in enabled.values() for urn in user.generated_by}):
        made_for = sorted(n for n, u in enabled.items() if urn in u.generated_by)
        subject = redis_label(server.resource, sentinel=server.sentinel)
        named = uses.setdefault(urn, {}).setdefault(subject, [])
        name = f">password of ACL {_users(made_for)}"
        if name not in named:
            named.append(name)
    if users:
        short.append(f"the >password of ACL {_users(users)}")
    if short:
        verb, subject, obj = ("is", "it", "it") if len(short) == 1 else ("are", "they", "them")
        yield (
            f"{redis_label(server.resource)} must be given passwords of at least {minimum} "
            f"characters in this stack's environment; {' and '.join(short)} {verb} shorter, "
            f"so {subject} can be guessed at Redis's speed. Generate {obj} (pulumi_random's "
            f"RandomPassword with length {minimum} or more) and deliver {obj} as a protected "
            f"file: an aclfile with #<sha256> passwords."
        )


def _users(names: Sequence[str]) -> str:
    return f"{'user' if len(names) == 1 else 'users'} {', '.join(names)}"


def _secrets_of(resource: Resource) -> set[str]:
    props = resource.props
    found = {u.content for u in uploads(props) if is_secret_upload(u) and u.content}
    names = set(secret_env_names(props))
    found |= {value for key, value in envs(props) if key in names}
    # A secret on a command line (DY56GO/mbp_back gave redis-server and redis_exporter one
    # literal password as --requirepass and --redis.password).
    found |= set(secret_argv_values(props))
    return {s for s in found if len(s.strip()) >= _MIN_SHARED_SECRET}


def not_shared_in_plain_form(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    # Each secret once, with the resources carrying it: matching every property of every
    # resource against every other resource's secrets one by one took minutes on a stack of
    # a thousand resources (docs/policy.md, "Large stacks").
    holders: dict[str, set[str]] = {}
    for source in task_containers(resources):
        with reading(source):
            secrets = _secrets_of(source)
        for secret in secrets:
            holders.setdefault(secret.strip(), set()).add(source.urn)
    if not holders:
        return
    shortest = min(len(s) for s in holders)
    for sink in resources:
        if not sink.type.startswith("docker:"):
            continue
        elsewhere = [s for s, urns in holders.items() if urns - {sink.urn}]
        exposed: set[str] = set()
        for key in sink.props:
            if key in sink.secret_outputs:
                continue
            for _, leaf in string_leaves(sink.props[key]):
                if len(leaf) >= shortest and any(s in leaf for s in elsewhere):
                    exposed.add(str(key))
                    break
        if exposed:
            yield Violation(
                f"{label(sink)} must not hold, in plain form, a secret another resource "
                f"carries ({', '.join(sorted(exposed))}); deliver it as a protected file and "
                f"list the property in additionalSecretOutputs.",
                sink.urn,
            )


def stack_reference_isolated(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    references = {r.urn for r in resources if r.type == STACK_REFERENCE}
    if not references:
        return
    for resource in resources:
        if resource.type.startswith("docker:") and references & set(resource.dependencies):
            yield Violation(
                f"{label(resource)} must not take values from another stack (StackReference); "
                f"each stack generates its own secrets and PKI.",
                resource.urn,
            )


RULES: Final = (
    ResourceRule(
        name="secret-env-not-plain",
        description="Containers get no secrets in environment variables.",
        resource_types=(CONTAINER,),
        check=env_not_plain,
        refs=("SECRET-02", "cis-docker-4.10"),
    ),
    ResourceRule(
        name="secret-labels-not-plain",
        description="Container labels carry no credentials.",
        resource_types=(CONTAINER,),
        check=labels_not_plain,
        refs=("SECRET-02",),
    ),
    ResourceRule(
        name="secret-argv-not-plain",
        description="Container commands and health checks carry no secrets.",
        resource_types=(CONTAINER,),
        check=argv_not_plain,
        refs=("SECRET-03",),
    ),
    ResourceRule(
        name="secret-state-encrypted",
        description="Container properties that carry secrets are encrypted in the Pulumi state.",
        resource_types=(CONTAINER,),
        check=state_encrypted,
        refs=("SECRET-04",),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="secret-upload-file-mode",
        description="Uploaded key and secret files are mode 0400.",
        resource_types=(CONTAINER,),
        check=upload_file_mode,
        refs=("TLS-10", "cis-docker-3.14"),
    ),
    ResourceRule(
        name="secret-image-build-args",
        description="Image builds get no secrets as build arguments.",
        resource_types=(IMAGE, REMOTE_IMAGE),
        check=image_build_args,
        refs=("SECRET-05",),
    ),
    ResourceRule(
        name="secret-provider-credentials-inline",
        description="Docker provider credentials are not inlined.",
        resource_types=(DOCKER_PROVIDER,),
        check=provider_credentials_inline,
        refs=("SECRET-06",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="secret-password-length",
        description="Passwords are long enough: generated ones, and those Redis is given.",
        check=password_length,
        refs=("REDIS-07", "STACK-02"),
        config_schema={
            "minimumLength": {
                "type": "integer",
                "minimum": 16,
                "default": 24,
                "description": "Shortest password, generated or given to Redis (production: 48).",
            }
        },
    ),
    StackRule(
        name="secret-not-shared-in-plain-form",
        description="No secret one resource carries appears in plain form in another.",
        check=not_shared_in_plain_form,
        refs=("SECRET-04", "SECRET-02"),
    ),
    StackRule(
        name="secret-stack-reference-isolated",
        description="Docker resources take no values from other stacks.",
        check=stack_reference_isolated,
        refs=("SECRET-07", "TLS-11"),
    ),
)
