"""Redis ACL rules evaluated the way Redis applies them, left to right, per user.

Only what the policies need: whether a user is enabled, lets anyone in without a password
(`nopass`), can run dangerous or admin commands, reaches every key or channel, or carries a
cleartext password. Values (passwords, hashes) are never kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

# Commands in @dangerous/@admin that an application user must never get (redis.conf ACL
# categories; docs/security-catalog.md REDIS-04).
DANGEROUS_COMMANDS: Final = frozenset(
    {
        "acl", "bgrewriteaof", "bgsave", "client", "cluster", "config", "debug", "failover",
        "flushall", "flushdb", "info", "keys", "lastsave", "latency", "migrate", "module",
        "monitor", "psync", "replconf", "replicaof", "restore", "restore-asking", "role", "save",
        "shutdown", "slaveof", "slowlog", "sort", "swapdb", "sync",
    }
)  # fmt: skip
# A value written for something else to fill in: a shell or envsubst variable (${NAME},
# ${NAME:-default}, $NAME) or a Go/Helm/Jinja template ({{ .Password }}). The whole value
# only: a real password may hold a `$` or braces.
PLACEHOLDER: Final = re.compile(
    r"\$\{[A-Za-z_]\w*(?:[:?+=-][^}]*)?\}|\$[A-Za-z_]\w*|\{\{.*\}\}|\{%.*%\}"
)
# A value written for a shell to run: a command substitution ($(cat /run/secrets/pw) or
# backquotes), perhaps in quotes. Redis runs nothing: in a file, or on argv nothing expands,
# the password is that text. The whole value only.
SUBSTITUTION: Final = re.compile(r"([\"']?)(?:\$\(.*\)|`.*`)\1")
# A value something may fill in or run before Redis reads it (a variable, a command
# substitution, a template): its length says nothing about the password.
MAY_BE_EXPANDED: Final = re.compile(r"[$`]|\{\{|\{%")
_PRIVILEGED_CATEGORIES: Final = frozenset({"dangerous", "admin"})
# A reload identity (re-read TLS files and the ACL file, nothing else) needs exactly these
# subcommands; Redis 7.0 ACLs cannot narrow CONFIG SET to its tls-* parameters.
RELOAD_SUBCOMMANDS: Final = frozenset({"config|set", "acl|load"})
# A metrics exporter identity (read Redis's own counters, nothing else) needs INFO whole
# (Redis 7.0 cannot narrow it to sections) and the ACL LOG subcommand.
EXPORTER_COMMANDS: Final = frozenset({"info"})
EXPORTER_SUBCOMMANDS: Final = frozenset({"acl|log"})
# Beside INFO (which it needs to wait for the result) it may also ask for an AOF rewrite, so
# that a data-key rotation leaves no envelope of the retired key in Redis's files
# (docs/day2.md, "What a retirement leaves"). BGREWRITEAOF takes no argument and only
# rewrites what Redis holds: without INFO or beside any key, channel or other grant it is
# refused as before.
EXPORTER_REWRITE: Final = "bgrewriteaof"


@dataclass
class AclUser:
    name: str
    enabled: bool = False
    nopass: bool = False
    """Any password authenticates (redis-auth-required refuses such an enabled user)."""
    cleartext_password: bool = False
    placeholder_password: bool = False
    """One of its passwords is a `>${NAME}` placeholder, which Redis takes as written."""
    substituted_password: bool = False
    """One of its passwords is a `>$(cat f)` command substitution, which Redis takes as
    written."""
    cleartext_lengths: list[int] = field(default_factory=list)
    """How long each >password it has is (never the password), leaving out any that may be
    expanded before Redis reads it (`$`, a backquote, `{{`) and those in `generated_by`."""
    generated_by: list[str] = field(default_factory=list)
    """For each >password a generator of the stack made (`acl_users`' `generated`), that
    generator's key in place of its length: its length is the generator's to judge."""
    all_commands: bool = False
    granted_categories: set[str] = field(default_factory=set)
    denied_categories: set[str] = field(default_factory=set)
    granted_commands: set[str] = field(default_factory=set)
    granted_subcommands: set[str] = field(default_factory=set)
    """`command|subcommand` grants, as written."""
    whole_commands: bool = False
    """Some command was granted whole (`+get`), not one of its subcommands."""
    whole_granted: set[str] = field(default_factory=set)
    """The commands granted whole, by name."""
    key_patterns: bool = False
    all_keys: bool = False
    all_channels: bool = False

    @classmethod
    def redis_default(cls) -> AclUser:
        """The `default` user when no ACL mentions it: `on nopass ~* &* +@all`."""
        return cls("default", enabled=True, nopass=True, all_commands=True, all_keys=True,
                   all_channels=True)  # fmt: skip

    def apply(  # noqa: PLR0912 - one branch per ACL rule keyword
        self, rule: str, generated: Mapping[str, str] | None = None
    ) -> None:
        """`generated`: passwords a generator of the stack made, each to its key."""
        lowered = rule.lower()
        if lowered == "on":
            self.enabled = True
        elif lowered == "off":
            self.enabled = False
        elif lowered in ("nopass", "resetpass"):
            # nopass: every password goes and any one is accepted; resetpass: none is.
            self.nopass = lowered == "nopass"
            self.placeholder_password = self.substituted_password = False
            self.cleartext_lengths = []
            self.generated_by = []
        elif rule.startswith((">", "#")):
            self.nopass = False  # Redis: adding a password ends nopass
            if rule.startswith(">"):
                self._add_cleartext(rule[1:], generated or {})
        elif lowered in ("allcommands", "+@all"):
            self._grant_all(True)
        elif lowered in ("nocommands", "-@all"):
            self._grant_all(False)
        elif lowered.startswith("+@"):
            self.granted_categories.add(lowered[2:])
            # A later grant can re-add commands an earlier -@dangerous took away.
            self.denied_categories -= _PRIVILEGED_CATEGORIES | {lowered[2:]}
        elif lowered.startswith("-@"):
            self.denied_categories.add(lowered[2:])
            self.granted_categories.discard(lowered[2:])
            if lowered[2:] in _PRIVILEGED_CATEGORIES:
                self.granted_commands -= DANGEROUS_COMMANDS
        elif lowered.startswith("+"):
            self.granted_commands.add(lowered[1:].split("|", 1)[0])
            if "|" in lowered:
                self.granted_subcommands.add(lowered[1:])
            else:
                self.whole_commands = True
                self.whole_granted.add(lowered[1:])
        elif lowered.startswith("-"):
            self.granted_commands.discard(lowered[1:].split("|", 1)[0])
            self.whole_granted.discard(lowered[1:].split("|", 1)[0])
            self.granted_subcommands = {
                s for s in self.granted_subcommands if not s.startswith(lowered[1:])
            }
        elif lowered in ("~*", "allkeys", "%rw~*", "%r~*", "%w~*"):
            self.all_keys = self.key_patterns = True
        elif lowered == "resetkeys":
            self.all_keys = self.key_patterns = False
        elif lowered.startswith(("~", "%")):
            self.key_patterns = True
        elif lowered in ("&*", "allchannels"):
            self.all_channels = True
        elif lowered == "resetchannels":
            self.all_channels = False
        elif lowered == "reset":
            self.__init__(self.name)  # type: ignore[misc]

    def _add_cleartext(self, password: str, generated: Mapping[str, str]) -> None:
        self.cleartext_password = True
        self.placeholder_password |= bool(PLACEHOLDER.fullmatch(password))
        self.substituted_password |= bool(SUBSTITUTION.fullmatch(password))
        if password in generated:
            self.generated_by.append(generated[password])
        elif not MAY_BE_EXPANDED.search(password):
            self.cleartext_lengths.append(len(password))

    def _grant_all(self, value: bool) -> None:
        self.all_commands = value
        self.granted_categories.clear()
        self.denied_categories.clear()
        self.granted_commands.clear()
        self.granted_subcommands.clear()
        self.whole_commands = False
        self.whole_granted.clear()

    @property
    def reload_only(self) -> bool:
        """May run some of RELOAD_SUBCOMMANDS and nothing else: no other command, no
        category, no key, no channel."""
        return (
            not self.all_commands
            and not self.granted_categories
            and bool(self.granted_subcommands)
            and self.granted_subcommands <= RELOAD_SUBCOMMANDS
            and not self.whole_commands
            and not self.key_patterns
            and not self.all_channels
        )

    @property
    def exporter_only(self) -> bool:
        """May run INFO, ACL LOG and BGREWRITEAOF (EXPORTER_COMMANDS, EXPORTER_SUBCOMMANDS,
        EXPORTER_REWRITE) and nothing else, INFO always among them: no other command or
        subcommand, no category, no key, no channel."""
        whole = EXPORTER_COMMANDS | {EXPORTER_REWRITE}
        return (
            not self.all_commands
            and not self.granted_categories
            and EXPORTER_COMMANDS <= self.whole_granted <= whole
            and self.granted_subcommands <= EXPORTER_SUBCOMMANDS
            and self.granted_commands <= whole | {"acl"}
            and not self.key_patterns
            and not self.all_channels
        )

    @property
    def privileged(self) -> bool:
        """Can run a @dangerous or @admin command."""
        grants_categories = self.all_commands or bool(self.granted_categories)
        if grants_categories and not self.denied_categories >= _PRIVILEGED_CATEGORIES:
            return True
        if self.granted_categories & _PRIVILEGED_CATEGORIES:
            return True
        return bool(self.granted_commands & DANGEROUS_COMMANDS)


def acl_users(
    rules: Sequence[Sequence[str]], generated: Mapping[str, str] | None = None
) -> dict[str, AclUser]:
    """Users after every `user <name> <rules...>` line; `default` as Redis leaves it.
    `generated`: passwords a generator of the stack made, each to its key (AclUser.generated_by).
    """
    users: dict[str, AclUser] = {}
    for line in rules:
        if not line:
            continue
        name = line[0]
        user = users.setdefault(name, AclUser(name))  # a mentioned user starts reset (off)
        for rule in line[1:]:
            for token in rule_tokens(rule):
                user.apply(token, generated)
    users.setdefault("default", AclUser.redis_default())
    return users


# A password that is a command substitution with blanks in it (`>$(cat /run/secrets/pw)`),
# given as one argument or one quoted word of a file, is one rule; any other blank ends one.
_RULE: Final = re.compile(r"""(?:[^\s$`]|\$\([^)]*\)|`[^`]*`|[$`])+""")


def rule_tokens(rule: str) -> list[str]:
    """The ACL rules in one argument or word (`on >pw ~a:* +get` as redis-server reads a
    `--user` value given as one word), a command substitution kept whole."""
    return _RULE.findall(rule)
