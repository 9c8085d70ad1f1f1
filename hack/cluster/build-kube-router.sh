#!/usr/bin/env bash
# Builds kube-router $KUBE_ROUTER_VERSION from the Go module proxy into $KUBE_ROUTER_BIN (static,
# a few minutes on 2 cores). The cluster runs only its NetworkPolicy firewall.
. "$(dirname "$0")/lib.sh"
mkdir -p "$KUBE_ROUTER_BIN"
s=$(date +%s)
CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOBIN=$KUBE_ROUTER_BIN.tmp go install -trimpath -ldflags '-s -w' \
  "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
mv "$KUBE_ROUTER_BIN.tmp/kube-router" "$KUBE_ROUTER_BIN/kube-router"
rmdir "$KUBE_ROUTER_BIN.tmp"
log "kube-router $KUBE_ROUTER_VERSION built in $(( $(date +%s)-s ))s"
