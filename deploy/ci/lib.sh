# Shared by the deploy/ci scripts (sourced, not run): where the stack's CI
# state lives, bounded waits, and the engine's client commands.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY=$REPO/deploy
# Per-run state (the CI .env, test certificates, the accounting drop, the
# dockerd log): outside the clone, removed by deploy/ci/down.
STATE=${HPCPERF_CI_STATE:-/tmp/hpcperf-compose-ci}
# Compose project name: the CI stack never collides with a site's "hpcperfstats".
PROJECT=hpcperfci

log() { echo "[ci $(date -u +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_until SECONDS WHAT CMD...: run CMD every 2 s until it succeeds; fail
# after SECONDS. Every wait in these scripts is bounded by one of these.
wait_until() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= limit )); then
      log "gave up waiting for $what after $limit s"
      return 1
    fi
    sleep 2
  done
}

# The compose command for the CI stack: the site's file plus the CI override,
# with the CI .env written by deploy/ci/up.
ci_compose() {
  docker compose --project-name "$PROJECT" --project-directory "$DEPLOY" \
    --env-file "$STATE/ci.env" \
    -f "$DEPLOY/compose.yaml" -f "$DEPLOY/ci/compose.ci.yaml" "$@"
}

# short input digests used as image tags: a tag names exactly what went in
digest() { sha256sum | cut -c1-16; }
