#!/usr/bin/env bash
# Builds etcd $ETCD_VERSION from the Go module proxy into $BIN. `go install ...@v` refuses (its go.mod
# has replace directives), so a scratch module requires go.etcd.io/etcd/server/v3 and builds it.
. "$(dirname "$0")/lib.sh"
BUILD=$CACHE/etcd-$ETCD_VERSION/build
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$BUILD" "$BIN"; cd "$BUILD"
s=$(date +%s)
printf 'module etcdbuild\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
printf '//go:build tools\n\npackage etcdbuild\n\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\n' > tools.go
go mod tidy
go build -trimpath -ldflags '-s -w' -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$BIN/etcd.tmp" "$BIN/etcd"
log "etcd $ETCD_VERSION built in $(( $(date +%s)-s ))s"
