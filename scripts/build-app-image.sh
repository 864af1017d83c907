#!/usr/bin/env bash
# Build the secure_cache app image from app/Dockerfile.
#
#   scripts/build-app-image.sh [--tag NAME:TAG] [--label KEY=VALUE]...
#   scripts/build-app-image.sh --wheelhouse-only   only fill app/wheelhouse (for pulumi up or
#                                                  the local applier, which build the image)
#   scripts/build-app-image.sh --cache-only        build the image untagged: the layers every
#                                                  build of app/Dockerfile shares, as build cache
#
# PyPI is not reachable inside `docker build`, so the wheelhouse is made here on the host:
# the secure_cache wheel from app/ plus the exact wheels of app/requirements-image.txt for
# the image's interpreter (Debian bookworm: CPython 3.11, glibc 2.36), then `docker build`
# installs them with --no-index --require-hashes (hashes recorded here, when the wheels are
# fetched: app/wheelhouse/requirements.hashed.txt). Prints the image id on the last line.
set -euo pipefail
LOG_TAG=build-app-image
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

tag="secure-redis-app:latest"
labels=()
wheelhouse_only=0
cache_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) [ -n "${2:-}" ] || die "--tag needs NAME:TAG"; tag="$2"; shift 2 ;;
        --label) [ -n "${2:-}" ] || die "--label needs KEY=VALUE"; labels+=(--label "$2"); shift 2 ;;
        --wheelhouse-only) wheelhouse_only=1; shift ;;
        --cache-only) cache_only=1; shift ;;
        -h | --help) print_usage; exit 0 ;;
        *) die "unknown argument '$1'; usage: scripts/build-app-image.sh [--tag NAME:TAG] [--label KEY=VALUE]..." ;;
    esac
done

require_venv
[ "$wheelhouse_only" = 1 ] || docker_ready || die "the Docker engine is not running; run scripts/bootstrap.sh"

wheels="$ROOT/app/wheelhouse"
mkdir -p "$wheels"
start="$(now_ms)"

# The wheels' architecture and a digest of what the wheelhouse is made from (app/'s sources
# and pinned requirements, this script, the architecture): an unchanged digest means nothing
# to rebuild. infra/wheelhouse.py computes both, for this script and for the local applier's
# `up`, which refuses a wheelhouse whose stamp is not this digest (app/ edited since).
read -r arch inputs < <(cd "$ROOT" && "$PY" -m infra.wheelhouse) || true
[ -n "${inputs:-}" ] || die "could not compute the wheelhouse's inputs; see the message above"

fill_wheelhouse() {
    rm -f "$stamp" "$wheels"/secure_cache-*.whl
    log "building the secure_cache wheel"
    # A fixed timestamp makes the wheel byte-identical between builds, so the image build
    # context (and the image tag the Pulumi program derives from it) changes only when the
    # code does.
    SOURCE_DATE_EPOCH=315532800 "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps \
        --wheel-dir "$wheels" "$ROOT/app" 2> >(grep -v "^WARNING: Location" >&2) \
        || die "could not build the secure_cache wheel from app/pyproject.toml"
    log "fetching pinned wheels for CPython 3.11 / manylinux $arch"
    local platforms=()
    for glibc in 2_36 2_34 2_28 2_17; do platforms+=(--platform "manylinux_${glibc}_${arch}"); done
    "$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
        --dest "$wheels" --python-version 3.11 --implementation cp \
        --abi cp311 --abi abi3 --abi none "${platforms[@]}" --platform "manylinux2014_${arch}" \
        --platform any -r "$ROOT/app/requirements-image.txt" 2> >(grep -v "^WARNING: Location" >&2) \
        || die "could not download the wheels in app/requirements-image.txt; check that PyPI is reachable"
    # The image installs with --require-hashes from this file (scripts/wheel_hashes.py).
    "$PY" "$ROOT/scripts/wheel_hashes.py" "$wheels" "$ROOT/app/requirements-image.txt" \
        secure_cache >"$wheels/requirements.hashed.txt" \
        || die "could not pin the wheelhouse's hashes; see the message above"
    echo "$inputs" >"$stamp"
}

stamp="$wheels/.inputs.sha256"
# One look at the stamp and fill at a time per checkout, under a lock in the wheelhouse itself
# (neither the image nor the stamp's digest sees it): two builds started together in a checkout
# without a wheelhouse (the image tests of two pytest-xdist workers, tests/support/app_image.py)
# each found no stamp and filled, the second removing and rewriting the wheel and the hashes
# the first was sending to docker build. The second now waits and finds the wheelhouse made.
# Opened for reading (flock needs no more): an account that may not write the wheelhouse
# (root's, 0755) still waits on a fill under way; one that cannot even make the file cannot
# fill either, and goes on without it.
fill_lock_file="$wheels/.fill.lock"
[ -e "$fill_lock_file" ] || : 2>/dev/null >"$fill_lock_file" || true
fill_lock=""
if [ -f "$fill_lock_file" ] && [ -r "$fill_lock_file" ]; then
    exec {fill_lock}<"$fill_lock_file"
    if ! flock -n "$fill_lock"; then
        log "waiting for another fill of app/wheelhouse to finish"
        flock "$fill_lock"
    fi
fi
if [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] && compgen -G "$wheels/secure_cache-*.whl" >/dev/null; then
    log "wheelhouse up to date (inputs unchanged since it was filled)"
else
    fill_wheelhouse
fi
# Released before the build: docker build only reads the wheelhouse, and the lock's
# descriptor is not left to it.
if [ -n "$fill_lock" ]; then
    flock -u "$fill_lock"
    exec {fill_lock}<&-
fi
if [ "$wheelhouse_only" = 1 ]; then
    log "wheelhouse ready in $(elapsed "$start") (app/wheelhouse)"
    exit 0
fi
if [ "$cache_only" = 1 ]; then
    # scripts/test.sh, once before the image builds of a run (the stacks' deploys, the tests'
    # images), which otherwise each built these layers at the same time from nothing. Nothing
    # is tagged or removed: the untagged image and its parents are the cache (see below).
    log "wheelhouse ready in $(elapsed "$start"); building the shared layers (untagged)"
    build_locked docker build --quiet "$ROOT/app" >/dev/null || die "docker build failed; see the output above"
    log "built the shared layers in $(elapsed "$start")"
    exit 0
fi
log "wheelhouse ready in $(elapsed "$start"); building $tag"
# The legacy builder keeps a multi-stage build's first stage as an untagged image, the build
# cache every build of app/Dockerfile shares (docs/verification.md: `down` keeps it). It
# is left there: removing it here (it was built under a temporary tag, removed on exit) took
# it from under a stack's image builds running at the same time, which failed with
# "invalid from flag value build: No such image" (CI, 2026-12-02, the deploy beside the tests).
# Under the build lock (scripts/lib.sh): a `down` beside it removes no parent it may go on from.
build_locked docker build --quiet --tag "$tag" "${labels[@]}" "$ROOT/app" >/dev/null \
    || die "docker build failed; see the output above"
log "built $tag in $(elapsed "$start")"
docker image inspect --format '{{.Id}}' "$tag"
