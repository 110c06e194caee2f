#!/bin/sh
# The container's entry point: `web` (the default), `worker`, `sweep`, `housekeeping`, `release`, `healthcheck`, or any
# management command (`createsuperuser`, `stripe_sync`, …). Each is a script in deploy/bin/.
set -eu
bin=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)/bin
command=${1:-web}
[ $# -gt 0 ] && shift
case $command in
  web) exec "$bin/portal-web" "$@" ;;
  worker) exec "$bin/portal-worker" "$@" ;;
  sweep) exec "$bin/portal-sweep" "$@" ;;
  housekeeping) exec "$bin/portal-housekeeping" "$@" ;;
  release) exec "$bin/portal-release" "$@" ;;
  collectstatic) exec "$bin/portal-collectstatic" "$@" ;;
  healthcheck) exec "$bin/portal-healthcheck" "$@" ;;
  *) exec portal "$command" "$@" ;;
esac
