"""What Bitnami's redis and valkey images hand their server, read from the container's variables.

Their entrypoint (`/opt/bitnami/scripts/<name>/entrypoint.sh`) runs the image's setup when the
command is its `run.sh` (the default command): the setup writes the server's config file from
the image's own (Redis's upstream redis.conf with `save ""`) and the container's variables, and
`run.sh` starts the server with that file, `--daemonize no`, the words of `<P>_EXTRA_FLAGS`
(split at whitespace) and the command's own arguments, which win. What the setup writes, as the
images' libredis.sh/libvalkey.sh (redis_configure_default) do it, `<P>` being REDIS or VALKEY:

- `protected-mode no` when ALLOW_EMPTY_PASSWORD is yes/true/1;
- `port <P>_PORT_NUMBER` (6379); with `<P>_TLS_ENABLED` yes: `tls-port <P>_TLS_PORT_NUMBER`
  (or `<P>_TLS_PORT`, 6379), and `port 0` only when both ports are 6379; `tls-cert-file`,
  `tls-key-file`, `tls-ca-cert-file` (or `tls-ca-cert-dir` without one) from `<P>_TLS_*`, and
  `tls-auth-clients <P>_TLS_AUTH_CLIENTS` (yes);
- `requirepass` from `<P>_PASSWORD` (Redis images from 7.4's scripts on: `REDIS_REQUIREPASS`,
  and not `REDIS_PASSWORD` when `REDIS_USER` is set; which script an image has is not in its
  tag, so those two cases are unknown);
- `rename-command <cmd> ""` per name in `<P>_DISABLE_COMMANDS`, `aclfile <P>_ACLFILE`,
  `appendonly <P>_AOF_ENABLED` (yes), `save` per `<P>_RDB_POLICY` entry;
- with `<P>_REPLICATION_MODE`: `tls-replication yes` under TLS, and for a replica
  `replicaof <host> <port>`;
- then `include <P>_OVERRIDES_FILE` when that file exists (default `mounted-etc/overrides.conf`).

A `mounted-etc/<name>.conf` replaces all of that with its own text. Every `<V>_FILE` variable
sets `<V>` from a file at start. Anything the pack cannot see (a file only mounted, a variable
given through a file or redacted) is unknown, and the rules fail closed on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from infra.rendered_resource import REDACTED
from policies.rules._props import entries, envs, is_under, text_at, uploads

_IMAGE: Final = re.compile(
    r"^(?:[^/@]+/)*(?:bitnami|bitnamilegacy)/(?P<name>redis|valkey)(?::(?P<tag>[\w.-]+))?"
    r"(?:@\S+)?$",
    re.IGNORECASE,
)
# Redis before 7.0 has DEBUG, MODULE and every CONFIG parameter on, with no directive to turn
# them off (enable-debug-command and its siblings came in 7.0; 6.2 refuses them as unknown).
ESCAPE_HATCHES: Final = (
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
)
BEFORE_7: Final = (
    "Redis before 7.0 has them on and no directive to turn them off: run Redis 7 or later"
)
_YES: Final = re.compile(r"^(?:1|yes|true)$", re.IGNORECASE)
# The variables whose values the setup writes into the config (after the prefix), each of which
# may instead be read from the file its `_FILE` twin names. The passwords count only as set or
# not, whatever their value or file.
_READ: Final = (
    "ALLOW_EMPTY_PASSWORD", "EXTRA_FLAGS", "OVERRIDES_FILE", "AOF_ENABLED", "RDB_POLICY",
    "RDB_POLICY_DISABLED", "PORT_NUMBER", "TLS_ENABLED", "TLS_PORT_NUMBER", "TLS_PORT",
    "TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CA_FILE", "TLS_CA_DIR", "TLS_AUTH_CLIENTS",
    "DISABLE_COMMANDS", "ACLFILE", "REPLICATION_MODE", "USER",
)  # fmt: skip


@dataclass(frozen=True)
class Flavour:
    name: str
    """redis or valkey: the image's scripts directory, its config file's stem."""
    prefix: str
    """The variables' prefix: REDIS or VALKEY."""
    primary: str
    """The word its replication variables use for the master: MASTER or PRIMARY."""

    @property
    def base(self) -> str:
        return f"/opt/bitnami/{self.name}"

    @property
    def conf(self) -> str:
        return f"{self.name}.conf"

    @property
    def binary(self) -> str:
        return f"{self.name}-server"

    @property
    def run_script(self) -> str:
        return f"/opt/bitnami/scripts/{self.name}/run.sh"

    @property
    def entrypoint(self) -> str:
        return f"/opt/bitnami/scripts/{self.name}/entrypoint.sh"

    @property
    def options_env(self) -> str:
        return f"{self.prefix}_EXTRA_FLAGS"

    @property
    def overrides(self) -> str:
        return f"{self.base}/mounted-etc/overrides.conf"


_FLAVOURS: Final = {
    "redis": Flavour("redis", "REDIS", "MASTER"),
    "valkey": Flavour("valkey", "VALKEY", "PRIMARY"),
}


def flavour(image: str) -> Flavour | None:
    """Bitnami's redis or valkey image (not its cluster or sentinel images), or None."""
    match = _IMAGE.match(image)
    return _FLAVOURS[match["name"].lower()] if match else None


def defaults(image: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The server's defaults: Redis's own (built from its source), with the escape hatches on
    when the tag names Redis 6 or older (no tag naming a version: the newest)."""
    match = _IMAGE.match(image)
    version = re.match(r"\d+", (match["tag"] or "") if match else "")
    if match and match["name"].lower() == "redis" and version and int(version.group(0)) < 7:
        return tuple((name, ("yes",)) for name in ESCAPE_HATCHES)
    return ()


def modules_unknown(image: str) -> tuple[tuple[str, str], ...]:
    """Bitnami's Redis from 8 on (or a tag or digest naming no version) ships Redis's modules,
    and its releases differ in whether their config loads them: `loadmodule` is unknown."""
    match = _IMAGE.match(image)
    if not match or match["name"].lower() != "redis":
        return ()
    version = re.match(r"\d+", match["tag"] or "")
    if version and int(version.group(0)) < 8:
        return ()
    why = (
        f"its image ({image}) is Bitnami's Redis 8 or later (or names no version), whose "
        f"releases differ in whether their config loads the modules Redis 8 ships, so whether "
        f"it loads them is unknown: name a Redis 7 tag (bitnami/redis:7.4) or run an image "
        f"whose module loads the pack can read (the official one, its version named)"
    )
    return (("loadmodule", why),)


def runs_setup(f: Flavour, words: list[str], entrypoints: list[str]) -> bool:
    """Whether the image's entrypoint runs its setup and then `run.sh`: its own entrypoint,
    and the default command or `run.sh` with arguments."""
    own_entrypoint = not entrypoints or entrypoints == [f.entrypoint]
    return own_entrypoint and (not words or words[0] == f.run_script)


@dataclass(frozen=True)
class Started:
    args: tuple[str, ...] | None
    """What the server receives, or None when the pack cannot tell (`why` says)."""
    unknown: tuple[tuple[str, str], ...] = ()
    why: str = ""
    options_file: str = ""
    """The file that may carry the server's settings: the mounted config when there is one."""


def started(f: Flavour, image: str, props: Mapping[str, Any], given: list[str]) -> Started:
    """What `run.sh` hands the server after the setup, `given` being run.sh's arguments."""
    env = dict(envs(props))
    for name in _READ:
        variable = name if name == "ALLOW_EMPTY_PASSWORD" else f"{f.prefix}_{name}"
        if env.get(f"{variable}_FILE"):
            return Started(None, why=(
                f"its image ({image}) reads {variable} from the file {variable}_FILE names, "
                f"which the pack cannot read"))  # fmt: skip
        if REDACTED in env.get(variable, ""):
            return Started(
                None,
                why=(f"its image ({image}) reads {variable}, which these records show redacted"),
            )
    targets = [u.path for u in uploads(props)]
    targets += [text_at(m, where, "target") or "" for where, m in entries(props, "mounts")]
    targets += [text_at(v, where, "containerPath") or "" for where, v in entries(props, "volumes")]
    targets = [t for t in targets if t]
    mounted_conf = f"{f.base}/mounted-etc/{f.conf}"
    live_conf = f"{f.base}/etc/{f.conf}"
    extra = env.get(f.options_env, "").split()
    run = ["--daemonize", "no", *extra, *given]
    if any(is_under(path, t) for t in targets for path in (mounted_conf, live_conf)):
        # The setup copies a mounted config over its own and writes nothing from variables.
        return Started((mounted_conf, *run), options_file=mounted_conf)
    directives, unknown = _written(f, image, env)
    overrides = env.get(f"{f.prefix}_OVERRIDES_FILE") or f.overrides
    if any(is_under(overrides, t) for t in targets):
        directives.append(("include", (overrides,)))
    args = [word for name, values in directives for word in (f"--{name}", *values)]
    return Started((*args, *run), tuple(unknown), options_file=overrides)


_PASSWORD_MARKER: Final = re.compile(r"^<(?P<prefix>[A-Z]+)_PASSWORD>$")


def marked_password(value: str, props: Mapping[str, Any]) -> str | None:
    """What the `<P_PASSWORD>` marker `_written` puts for requirepass stands for: the value of
    the container's P_PASSWORD variable ("" when it is not there; None when `value` is no
    marker). Only for comparing lengths, never for a message."""
    match = _PASSWORD_MARKER.match(value)
    if match is None:
        return None
    return dict(envs(props)).get(f"{match['prefix']}_PASSWORD", "")


def _written(
    f: Flavour, image: str, env: Mapping[str, str]
) -> tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, str]]]:
    """The directives the setup writes from the variables, and the ones it cannot tell."""

    def var(name: str, default: str = "") -> str:
        return env.get(f"{f.prefix}_{name}") or default

    def given(name: str) -> bool:
        return bool(var(name) or var(f"{name}_FILE"))

    out: list[tuple[str, tuple[str, ...]]] = [("save", ("",))]  # the image's own config
    unknown: list[tuple[str, str]] = []
    if _YES.match(env.get("ALLOW_EMPTY_PASSWORD", "")):
        out.append(("protected-mode", ("no",)))
    out.append(("appendonly", (var("AOF_ENABLED", "yes"),)))
    # Each entry of the RDB policy is one `save <seconds> <changes>` ("900#1").
    out += [("save", tuple(p.replace("#", " ").split())) for p in var("RDB_POLICY").split()]
    if not var("RDB_POLICY") and _YES.match(var("RDB_POLICY_DISABLED")):
        out.append(("save", ("",)))
    tls = bool(_YES.match(var("TLS_ENABLED")))
    out += _ports_and_tls(var, tls)
    # Never the password itself: a rule only asks whether one is set.
    password = f"<{f.prefix}_PASSWORD>"
    if f.prefix != "REDIS":
        if given("PASSWORD"):
            out.append(("requirepass", (password,)))
    elif given("PASSWORD") and (given("REQUIREPASS") or not given("USER")):
        out.append(("requirepass", (password,)))
    elif given("REQUIREPASS") or given("PASSWORD"):
        unknown.append(("requirepass", (
            f"its image ({image}) sets requirepass from REDIS_REQUIREPASS, and from "
            f"REDIS_PASSWORD only while REDIS_USER is unset, in its scripts from Redis 7.4's on, "
            f"and from REDIS_PASSWORD alone before (its tag does not say which it has)"
        )))  # fmt: skip
    for command in re.split(r"[,\s]+", var("DISABLE_COMMANDS")):
        if command:
            out.append(("rename-command", (command, "")))
    if var("ACLFILE"):
        out.append(("aclfile", (var("ACLFILE"),)))
    mode = var("REPLICATION_MODE")
    if mode:
        if tls:
            out.append(("tls-replication", ("yes",)))
        if mode in ("replica", "slave"):
            host = var(f"{f.primary}_HOST") or var("SENTINEL_HOST")
            out.append(("replicaof", (host, var(f"{f.primary}_PORT_NUMBER", "6379"))))
    return out, unknown


def _ports_and_tls(var: Callable[..., str], tls: bool) -> list[tuple[str, tuple[str, ...]]]:
    port = var("PORT_NUMBER", "6379")
    out: list[tuple[str, tuple[str, ...]]] = [("port", (port,))]
    if not tls:
        return out
    tls_port = var("TLS_PORT_NUMBER") or var("TLS_PORT", "6379")
    if port == "6379" and tls_port == "6379":
        out.append(("port", ("0",)))  # both on the default port: TLS only
    out.append(("tls-port", (tls_port,)))
    out.append(("tls-cert-file", (var("TLS_CERT_FILE"),)))
    out.append(("tls-key-file", (var("TLS_KEY_FILE"),)))
    if var("TLS_CA_FILE"):
        out.append(("tls-ca-cert-file", (var("TLS_CA_FILE"),)))
    else:
        out.append(("tls-ca-cert-dir", (var("TLS_CA_DIR"),)))
    out.append(("tls-auth-clients", (var("TLS_AUTH_CLIENTS", "yes"),)))
    return out


def hint(f: Flavour, image: str) -> str:
    """What the image does with its variables, for every Redis message about such a server."""
    p = f.prefix
    return (
        f"Its image ({image}) writes its {f.conf} from {p}_* variables (ALLOW_EMPTY_PASSWORD=yes "
        f"turns protected mode off, {p}_PASSWORD sets requirepass, {p}_TLS_ENABLED=yes sets the "
        f"{p}_TLS_* files and listens for TLS only when {p}_PORT_NUMBER and "
        f"{p}_TLS_PORT_NUMBER are both 6379) and starts {f.binary} with it, then the options in "
        f"{p}_EXTRA_FLAGS and its command's, which win: set the other options there."
    )
