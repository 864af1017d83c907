#!/usr/bin/env bash
# Make debian:bookworm-slim available to the local Docker engine, the base of both images.
#
#   scripts/bootstrap-base-image.sh     (no arguments; BASE_IMAGE=TAG another tag, PULL_TIMEOUT=S)
#
# Order: already present -> pull it (users with a registry get the official image) -> build it
# offline from Debian's packages with mmdebstrap (no registry reachable).
set -euo pipefail
LOG_TAG=base-image
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h | --help) print_usage; exit 0 ;; esac
[ "$#" -eq 0 ] || die "no arguments expected; usage: scripts/bootstrap-base-image.sh"

# BASE_IMAGE overrides the tag (the image is always Debian bookworm), e.g. to test this script.
IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"
# `timeout abc` fails at once, its error silenced with docker pull's below: the script then said
# the pull failed and built the image offline, with no pull run. `timeout 0` never ends it.
if [[ ! "$PULL_TIMEOUT" =~ ^[0-9]+$ || "$PULL_TIMEOUT" =~ ^0+$ ]]; then
    die "PULL_TIMEOUT=$(shown "$PULL_TIMEOUT") is not a whole number of seconds above 0; set it to one (default 60), e.g. PULL_TIMEOUT=120"
fi

docker_ready || die "$(docker_unready)"

start="$(now_ms)"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already present (checked in $(elapsed "$start"))"
    exit 0
fi

log "pulling $IMAGE (up to ${PULL_TIMEOUT}s)"
if timeout "$PULL_TIMEOUT" docker pull --quiet "$IMAGE" >/dev/null 2>&1; then
    log "pulled $IMAGE in $(elapsed "$start")"
    exit 0
fi

have mmdebstrap || die "cannot pull $IMAGE and mmdebstrap is missing; run scripts/bootstrap.sh as root (it installs mmdebstrap) or pull $IMAGE from a registry you can reach"
log "pull failed; building $IMAGE offline with mmdebstrap (about 30 s)"
# minbase: the same package set as the official slim image (essential + apt), no recommends.
# mmdebstrap copies the build machine's /etc/resolv.conf and /etc/hostname into the tree so
# apt works inside it; the customize hook empties both again (the engine bind-mounts its own
# at run time), so the image carries nothing of this machine, as the official image does.
# shellcheck disable=SC2016 # "$1" is the chroot path mmdebstrap passes to the hook
if ! mmdebstrap --quiet --variant=minbase --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='truncate --size=0 "$1/etc/resolv.conf" "$1/etc/hostname"' bookworm - \
    | docker import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null; then
    die "mmdebstrap could not build $IMAGE; check that the Debian mirror in /etc/apt is reachable"
fi
log "built $IMAGE with mmdebstrap in $(elapsed "$start")"
