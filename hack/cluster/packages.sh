#!/usr/bin/env bash
# Installs the Debian packages the local cluster needs ($PACKAGES in lib.sh), only those missing.
# `apt-get update` runs first, and only when something is missing.
. "$(dirname "$0")/lib.sh"
# The e2e tests also need python3 with httpx: internal/upstreamclient drives the in-pod server with
# the requests of pydantic-ai-backend's Python client.
PACKAGES="$PACKAGES python3 python3-httpx"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
require_root "installing packages ($missing)"
command -v apt-get >/dev/null || die "missing packages:$missing, and apt-get is not available (this needs Debian 12 or similar)"
log "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || die "apt-get update failed"
# shellcheck disable=SC2086
if ! out=$(apt-get install -y -qq --no-install-recommends $missing 2>&1); then
  printf '%s\n' "$out" >&2
  die "could not install:$missing (see apt-get's output above)"
fi
# Debian starts no daemon here (no systemd), but make sure no distribution containerd was started.
for p in $missing; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || die "package $p is still not installed"
done
log "installed:$missing"
