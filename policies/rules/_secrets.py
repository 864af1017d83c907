"""Recognising secret material in container properties, without ever returning the secret.

Findings name *where* a secret is (an env var name, an argv position, an upload path), never
its value, so messages built from them are safe to print.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from policies.rules._props import (
    Upload,
    argv_words,
    envs,
    healthcheck_tests,
    items,
    mapping,
    shell_words,
    text,
)
from policies.rules._redisconf import CLIENT_BINARIES, SERVER_BINARIES

# An env var whose *name* says it holds a secret (docs/security-catalog.md SECRET-02): it ends
# in one of these words. `*_FILE` variants hold a path to a file and are the recommended
# delivery, so they never match.
_SECRET_NAME: Final = re.compile(
    r"(?i)(pass|passwd|password|passphrase|secret|token|private|credentials?|(^|_)keys?|auth)$"
)
# Words that name a secret wherever they stand in a name (SECRET_KEY_BASE, DB_PASSWORD_PLAIN,
# SECRET_ARG), unless a word after the last of them says the value is *about* the secret (its
# file, length, lifetime, name, endpoint ...) rather than the secret itself: any word after it,
# since a unit or a preposition often comes last (ACCESS_TOKEN_EXPIRES_IN, TOKEN_TTL_MS).
_STRONG_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "credential", "credentials"}
)
_ABOUT_A_SECRET: Final = frozenset(
    {"file", "path", "dir", "length", "len", "min", "max", "size", "count", "limit", "ttl",
     "expiry", "expires", "expiration", "timeout", "interval", "seconds", "minutes", "hours",
     "days", "time", "lifetime", "lifespan", "duration", "age", "expire", "expired",
     "rotation", "name", "id", "prefix", "enabled", "required", "mode", "type", "kind",
     "format", "encoding", "url", "uri", "endpoint", "host", "port", "region", "provider",
     "backend", "store", "source", "algorithm", "method", "version", "policy", "header", "scope",
     "scopes", "audience", "issuer", "permissions", "arn", "hasher", "hashers", "scheme",
     "schemes"}
)  # fmt: skip
# Secret words a storage key's value never repeats: JWT_SECRET_KEY=jwt-secret is a (weak)
# secret, ACCESS_TOKEN_KEY=access-token the name of the cookie the token is kept under.
_NEVER_A_KEY_NAME: Final = _STRONG_SECRET_WORDS - {"token"} | {"private"}
# A count, size or duration (10, 19456, 1h, 30d, P30D): where the secret's word is not the
# name's last (PASSWORD_SALT_ROUNDS, PASSWORD_HASH_MEMORY_KB, MAX_PASSWORD_ATTEMPTS), a
# setting's value, not the secret. At most ten digits: a longer number may be a numeric key.
_QUANTITY: Final = re.compile(
    r"(?i)\d{1,10}(\.\d+)?\s*(ms|s|m|h|d|w|y|kb|mb|gb)?|p(t?\d{1,10}[ymwdhs])+"
)
# Flag values: a variable set to one of these switches something on or off (Bitnami's
# ALLOW_EMPTY_PASSWORD=yes turns authentication off, and the MySQL image's
# MYSQL_ALLOW_EMPTY_PASSWORD=1 as well); it is a setting, not a credential.
_FLAG_VALUES: Final = frozenset({"yes", "no", "true", "false", "on", "off", "1", "0"})
# A URL whose user-info part carries a password (what CKV_SECRET_4 calls basic-auth URLs).
_URL_WITH_PASSWORD: Final = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")
_PRIVATE_KEY: Final = "PRIVATE KEY-----"
_VARIABLE: Final = re.compile(r"\$\{?[A-Za-z_]\w*(?:[:?+=-][^}]*)?\}?")
_SECRET_FILE: Final = re.compile(
    r"(?i)(\.key$|(^|[._-])(keys?|pw|pass)$|passw(or)?d|secret|token|credential|keyring"
    r"|\.p12$|\.pfx$)"
)
# redis-server options whose value is a cleartext password.
_REDIS_SERVER_SECRET_OPTIONS: Final = frozenset({"--requirepass", "--masterauth"})
# redis-cli flags followed by a password, and the AUTH command.
_REDIS_CLI_SECRET_FLAGS: Final = frozenset({"-a", "--pass", "--password"})
_SHELL_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&"})
# A shell variable assignment word (`NAME=value`), before a command or after `export`.
_ASSIGNMENT: Final = re.compile(r"([A-Za-z_]\w*)=(.*)", re.DOTALL)
# Redis credentials in any text: a `requirepass`/`masterauth` directive or option with a value,
# or an ACL rule that sets a cleartext password (`>secret`), wherever the text travels.
_CLEARTEXT_DIRECTIVE: Final = re.compile(r"(?im)(?:^|\s|--)(?:requirepass|masterauth)\s+\S")
_ACL_CLEARTEXT: Final = re.compile(r"(?im)(?:^|\s)user\s+\S+\s+(?:.*\s)?>\S")
# The value of each such directive or option (`requirepass X`, `--masterauth "X"`), and each
# ACL rule that sets a password (the rule's `>X` words).
_DIRECTIVE_VALUE: Final = re.compile(r"(?im)(?:^|\s|--)(?:requirepass|masterauth)\s+(\S+)")
_ACL_RULE: Final = re.compile(r"(?im)(?:^|\s)user\s+\S+\s+(.*)$")
# A password given only as a shell variable: `$P`, `"${P}"`, `${P:?unset}` (which stops the
# script when P is unset). `${P:-changeme}` is not one: its default is a password in the text.
_BARE_REFERENCE: Final = re.compile(
    r"[\"']?\$(?:[A-Za-z_]\w*|\{[A-Za-z_]\w*(?::?\?[^}]*)?\})[\"']?"
)


def secret_named(name: str, value: str) -> bool:
    """Whether a variable, label or build argument carries a secret by its name (never looks at
    what the value is beyond telling a flag, or a count or duration, apart)."""
    if not value or value.strip().lower() in _FLAG_VALUES:
        return False
    words = [w for w in re.split(r"[_.\-]+", name.lower()) if w]
    if not words or words[-1] == "file" or _names_where_it_is_kept(words, value):
        return False
    if _SECRET_NAME.search(name):
        return True
    strong = [i for i, word in enumerate(words) if word in _STRONG_SECRET_WORDS]
    return (
        bool(strong)
        and not _ABOUT_A_SECRET.intersection(words[strong[-1] + 1 :])
        and not _QUANTITY.fullmatch(value.strip())
    )


def _names_where_it_is_kept(words: list[str], value: str) -> bool:
    """ACCESS_TOKEN_KEY=access-token: a `*_KEY` whose value spells the two or more words before
    KEY is the key (cookie, header, storage slot) the thing is kept under, not a secret."""
    spelt = [w for w in re.split(r"[_.\-]+", value.strip().lower()) if w]
    return (
        words[-1] in ("key", "keys")
        and len(words) >= 3
        and spelt == words[:-1]
        and not _NEVER_A_KEY_NAME.intersection(spelt)
    )


def cleartext_credential(value: str) -> bool:
    """Whether a text carries a credential in the clear (never returns what it found)."""
    return bool(
        _URL_WITH_PASSWORD.search(value)
        or _PRIVATE_KEY in value
        or _CLEARTEXT_DIRECTIVE.search(value)
        or _ACL_CLEARTEXT.search(value)
    )


def secret_env_names(props: Mapping[str, Any]) -> list[str]:
    """Names of env vars that carry a secret value in plain text."""
    found = []
    for key, value in envs(props):
        if not value:
            continue
        if secret_named(key, value) or cleartext_credential(value):
            found.append(key)
    return found


def secret_label_names(props: Mapping[str, Any]) -> list[str]:
    """Names of labels whose value carries a credential (labels are public metadata)."""
    found = []
    for index, raw in enumerate(items(props.get("labels"), "labels")):
        entry = mapping(raw, f"labels[{index}]")
        name = text(entry.get("label"), f"labels[{index}].label") or f"labels[{index}]"
        value = text(entry.get("value"), f"labels[{index}].value") or ""
        if value and (secret_named(name, value) or cleartext_credential(value)):
            found.append(name)
    return sorted(set(found))


def secret_words(words: list[str], values: list[str] | None = None) -> list[str]:
    """Where argv carries secrets ("--requirepass", "redis-cli -a", "a URL with a password").
    `values`, when given, gets the secrets themselves (for comparing, never for a message)."""
    found = _secrets_in(words)
    if values is not None:
        values.extend(value for _, value in found if value)
    return sorted({where for where, _ in found})


def written_secret(words: list[str]) -> bool:
    """Whether the words as written hold a secret, as the Pulumi state keeps them: a password
    given only as where it comes from (`-a "$REDIS_PASSWORD"`, `$(cat f)`) puts that name in
    the state, not the password, though the password is on the command line when they run."""
    return any(
        where == "a private key" or _written(value) for where, value in _secrets_in(words)
    ) or file_credential(" ".join(words))


def _written(value: str) -> bool:
    """A secret's value as written, not a reference to one: `${P:-changeme}` holds its
    default, while `$P`, `"${P}"` and `$(cat f)` (or backquotes) only say where it is read."""
    return bool(value) and not (_BARE_REFERENCE.fullmatch(value) or "$(" in value or "`" in value)


def _secrets_in(words: list[str]) -> list[tuple[str, str]]:
    """(where, the secret) for each secret the words carry; the secret is "" where it is not a
    word of its own (a private key's block, an ACL rule inside a longer word)."""
    found: list[tuple[str, str]] = []
    program = ""
    for i, word in enumerate(words):
        base = word.rsplit("/", 1)[-1]
        if word in _SHELL_SEPARATORS:
            program = ""
            continue
        if base in SERVER_BINARIES | CLIENT_BINARIES | {"redis-sentinel"}:
            program = base
            continue
        at = _secret_at(words, i, program)
        if at is not None:
            found.append(at)
        if _URL_WITH_PASSWORD.search(word):
            found.append(("a URL with a password", word))
        if _PRIVATE_KEY in word:
            found.append(("a private key", ""))
    joined = " ".join(words)
    if _CLEARTEXT_DIRECTIVE.search(joined) and not found:
        found.append(("a requirepass or masterauth value", ""))
    if _ACL_CLEARTEXT.search(joined):
        found.append(("an ACL rule with a >password", ""))
    return found


def _secret_at(  # noqa: PLR0911 - one return per way an argv word gives a secret
    words: list[str], i: int, program: str
) -> tuple[str, str] | None:
    """(where, the secret) when words[i] is an option that gives one ("" when the value is
    not a word of its own: an ACL rule inside --user)."""
    word = words[i]
    following = words[i + 1] if i + 1 < len(words) else ""
    if word in _REDIS_SERVER_SECRET_OPTIONS:
        return word, following
    if program.endswith("-cli") and word in _REDIS_CLI_SECRET_FLAGS and following:
        return f"{program} {word}", following
    if program.endswith("-cli") and word.upper() == "AUTH" and following:
        return f"{program} AUTH", following
    if program.endswith("-server") and word == "--user" and _acl_password_follows(words, i):
        return "--user with a >password rule", ""
    if not program and _secret_flag(word, following):
        name, equals, value = word.partition("=")
        return name + equals, value if equals else following
    if not program:
        return _secret_assignment(word)
    return None


def _secret_assignment(word: str) -> tuple[str, str] | None:
    """`REDISCLI_AUTH=pw redis-cli ...` (or `export DB_PASSWORD=pw`): a variable named for a
    secret, given a password as written. `REDISCLI_AUTH="$(cat f)"` or `=$P` reads it when it
    runs, as a health check should, so only a written value counts."""
    assignment = _ASSIGNMENT.fullmatch(word)
    if assignment is None:
        return None
    name, value = assignment.groups()
    if _written(value) and secret_named(name, value):
        return f"{name}=", value
    return None


def _secret_flag(word: str, following: str) -> bool:
    """Whether `word` is a flag named for a secret that is given its value, in the next word
    or after `=` (redis_exporter's `--redis.password PASS`, Go's `-db.password`,
    `--api-token=T`), named as variables are (`secret_named`): `--password-file` names a file
    and `--token-ttl 3600` a lifetime, so neither is one. redis-server's, redis-cli's and
    sentinel's own options are read above, by program."""
    if not word.startswith("-") or len(word.lstrip("-")) < 2:
        return False
    name, equals, value = word.lstrip("-").partition("=")
    if not equals:
        value = "" if following.startswith("-") else following
    return secret_named(name, value)


def _acl_password_follows(words: list[str], start: int) -> bool:
    for word in words[start + 1 :]:
        if word.startswith("--"):
            return False
        if any(token.startswith(">") and len(token) > 1 for token in word.split()):
            return True
    return False


def secret_argv(props: Mapping[str, Any]) -> list[str]:
    return secret_words(argv_words(props))


def secret_argv_values(props: Mapping[str, Any]) -> list[str]:
    """The secrets argv carries (what `secret_argv` names): to compare, never to print."""
    values: list[str] = []
    secret_words(argv_words(props), values)
    # `$REDIS_PASSWORD` or `$(cat /run/secrets/redis)` in a shell's script is where the secret
    # comes from, not the secret: two containers naming the same variable or file share none.
    return [v for v in values if not (_VARIABLE.fullmatch(v) or "$(" in v or "`" in v)]


def secret_healthcheck(props: Mapping[str, Any]) -> list[str]:
    return secret_words(_healthcheck_words(props))


def written_secrets(props: Mapping[str, Any]) -> dict[str, bool]:
    """Whether `command` (argv) and `healthcheck` hold a secret as written (`written_secret`)."""
    return {
        "command": written_secret(argv_words(props)),
        "healthcheck": written_secret(_healthcheck_words(props)),
    }


def _healthcheck_words(props: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for test in healthcheck_tests(props):
        words.extend(shell_words(test) if " " in test else [test])
    return words


def is_secret_upload(upload: Upload) -> bool:
    """A file that must be protected like a key: redacted, a private key, named like one, or
    holding a credential in the clear (`file_credential`)."""
    if upload.redacted or _SECRET_FILE.search(upload.basename):
        return True
    return file_credential(upload.content or "")


def file_credential(content: str) -> bool:
    """Whether a file's text holds a credential in the clear, as `cleartext_credential` tells,
    except that a Redis password given only as a variable (`--requirepass "$REDIS_PASSWORD"`,
    `user app on >$P` in an entrypoint script) is none: a script reads it from its environment
    when it runs (where secret-env-not-plain judges it), and Redis reading such a line from a
    config takes the characters `$P`, a public string, not a secret. Such a script must stay
    executable, which a secret file may not be."""
    if _URL_WITH_PASSWORD.search(content) or _PRIVATE_KEY in content:
        return True
    passwords = [m.group(1) for m in _DIRECTIVE_VALUE.finditer(content)]
    for rule in _ACL_RULE.finditer(content):
        passwords += [w[1:] for w in rule.group(1).split() if w.startswith(">") and len(w) > 1]
    return any(not _BARE_REFERENCE.fullmatch(p) for p in passwords)


def private_key_blocks(value: str) -> list[str]:
    """Every PEM private-key block in a string, normalised for comparison."""
    pattern = r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----"
    return [m.group(0).strip() for m in re.finditer(pattern, value, re.DOTALL)]
