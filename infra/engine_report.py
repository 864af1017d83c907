"""What the Docker engine itself leaves open, for the setup summary.

    python -m infra.engine_report        prints the engine version, whether it remaps user
                                         namespaces, whether it keeps containers running
                                         while it restarts, and the exposures known for its
                                         version
    python -m infra.engine_report --live-restore
                                         only the live-restore line (scripts/status.sh and
                                         scripts/bootstrap.sh print it)

The project closes what it can (infra/firewall.py, infra/runtime_ids.py); this says plainly
what depends on the engine, so an operator knows what upgrading or reconfiguring it adds.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, Final

from infra.cli import OneLineParser, exit_with, say

# moby/moby#45610: the DNAT of a 127.0.0.1-published port matches no input interface, so an
# L2 neighbour that sends packets for 127.0.0.1 to this host reaches the container. Docker
# Engine 28.0 added the filtering that closes it.
LOOPBACK_DNAT_FIXED_IN: Final = (28, 0)
# CIS Docker Benchmark 2.14. Without live-restore, stopping the engine (an upgrade, a crash,
# a restart) stops every container cleanly (exit 0), and Docker restarts no `on-failure`
# container after its own restart, so the stack's services stay stopped until an up (measured:
# docs/day2.md). The option is reloadable (SIGHUP): enabling it restarts no container.
LIVE_RESTORE_ON: Final = (
    "live-restore: on: the stack's containers keep running while the Docker engine stops or "
    "restarts (not across a reboot)"
)
LIVE_RESTORE_OFF: Final = (
    "WARNING live-restore: off: when the Docker engine stops or restarts, every container "
    "stops and the stack's services (restart on-failure, CIS Docker 5.15) stay stopped until "
    'the next up. Enable it (CIS Docker 2.14): add "live-restore": true to '
    "/etc/docker/daemon.json and reload the engine (systemctl reload docker, or "
    "kill -HUP $(pidof dockerd)), which restarts no container; an engine that "
    "scripts/bootstrap.sh starts has it on"
)
# A swarm member cannot have it: dockerd refuses to start with both ("--live-restore daemon
# configuration is incompatible with swarm mode"), so the advice above would stop the engine.
LIVE_RESTORE_SWARM: Final = (
    "WARNING live-restore: off, and this engine is a swarm member: live-restore is "
    "incompatible with swarm mode (dockerd refuses to start with both), so when the engine "
    "stops or restarts, every container stops and the stack's services (restart on-failure, "
    "CIS Docker 5.15) stay stopped until the next up"
)
# `docker info` Swarm.LocalNodeState values of an engine in a swarm (moby's api/types/swarm).
SWARM_MEMBER_STATES: Final = frozenset({"active", "pending", "locked", "error"})


def engine_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of a `docker info` ServerVersion such as `20.10.24+dfsg1`."""
    match = re.match(r"^(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def userns_remapped(security_options: Sequence[str]) -> bool:
    """`docker info` SecurityOptions carries `name=userns` when the daemon remaps uids."""
    return any("name=userns" in option.split(",") for option in security_options)


def live_restore_line(info: dict[str, Any]) -> str:
    """The verdict on `docker info` LiveRestoreEnabled (absent counts as off)."""
    if info.get("LiveRestoreEnabled") is True:
        return LIVE_RESTORE_ON
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") in SWARM_MEMBER_STATES:
        return LIVE_RESTORE_SWARM
    return LIVE_RESTORE_OFF


def report_lines(info: dict[str, Any]) -> list[str]:
    """Summary lines for `docker info` output (the API's /info object)."""
    version_text = str(info.get("ServerVersion", "unknown"))
    version = engine_version(version_text)
    lines = [f"docker engine {version_text}"]
    if userns_remapped(info.get("SecurityOptions") or []):
        lines.append("user namespaces: remapped (userns-remap): container uids are not host uids")
    else:
        lines.append(
            "WARNING user namespaces: not remapped: a container's uid is a host uid. The stack "
            "runs as ids no Debian host allocates (infra/runtime_ids.py); userns-remap in "
            "/etc/docker/daemon.json is the stronger, daemon-wide fix"
        )
    lines.append(live_restore_line(info))
    if version is None or version < LOOPBACK_DNAT_FIXED_IN:
        lines.append(
            f"WARNING engine {version_text}: 127.0.0.1-published ports are reachable from "
            "hosts on the same L2 segment (moby/moby#45610, fixed in Docker Engine 28.0); "
            "the stack's firewall rules (infra/firewall.py, installed as root) drop them"
        )
    lines.append(
        "note: Docker does not filter traffic from containers to the host itself; the stack's "
        "firewall rules drop it for its bridges (installed as root)"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m infra.engine_report",
        description="What the Docker engine leaves open: its version, whether it remaps user "
        "namespaces, and the exposures known for that version (read from `docker info`).",
    )
    parser.add_argument(
        "--live-restore",
        action="store_true",
        help="print only whether the engine keeps containers running across its own restart",
    )
    args = parser.parse_args(argv)
    import docker  # noqa: PLC0415 - only the command needs the engine client
    from docker.errors import DockerException  # noqa: PLC0415

    try:
        info = docker.from_env().info()
    except DockerException as exc:
        print(f"engine: cannot read docker info: {exc}", file=sys.stderr)
        return 1
    lines = [live_restore_line(info)] if args.live_restore else report_lines(info)
    for line in lines:
        say(f"engine: {line}")
    return 0


if __name__ == "__main__":
    exit_with(main)


__all__ = [
    "LIVE_RESTORE_OFF",
    "LIVE_RESTORE_ON",
    "LIVE_RESTORE_SWARM",
    "LOOPBACK_DNAT_FIXED_IN",
    "SWARM_MEMBER_STATES",
    "engine_version",
    "live_restore_line",
    "main",
    "report_lines",
    "userns_remapped",
]
