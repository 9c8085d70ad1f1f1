#!/usr/bin/env bash
# Builds gVisor's runsc ($GVISOR_RUNSC_VERSION) and containerd-shim-runsc-v1 ($GVISOR_SHIM_VERSION)
# from the Go module proxy into $GVISOR_BIN.
#
# runsc: `go install`, static (CGO_ENABLED=0), about 5 minutes on 2 cores.
# The shim: containerd 1.6 only parses the bootstrap of the 2024 shims. It sets oom_score_adj -999
# on itself and fails where root lacks CAP_SYS_RESOURCE (this VM); containerd's own runc shim
# ignores that EACCES, and so does ours after a one-line change applied here to a scratch copy of
# the module (go build -overlay refuses files in the module cache, so the copy is replaced in).
. "$(dirname "$0")/lib.sh"
BUILD=$CACHE/gvisor-build
export GOFLAGS="-mod=mod -buildvcs=false"
mkdir -p "$BUILD" "$GVISOR_BIN"
t0=$(date +%s)

if ! have_runsc; then
  s=$(date +%s)
  CGO_ENABLED=0 GOBIN=$BUILD/runsc-bin go install -trimpath -ldflags '-s -w' "gvisor.dev/gvisor/runsc@$GVISOR_RUNSC_VERSION"
  mv "$BUILD/runsc-bin/runsc" "$GVISOR_BIN/runsc"
  log "built runsc in $(( $(date +%s)-s ))s"
fi

if ! have_shim; then
  s=$(date +%s)
  mod=$BUILD/shim
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init shimbuild >/dev/null 2>&1
  src=$(go mod download -json "gvisor.dev/gvisor@$GVISOR_SHIM_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$src/pkg/shim" ] || die "could not download gvisor.dev/gvisor@$GVISOR_SHIM_VERSION from the Go module proxy"
  cp -r "$src" "$mod/gvisor"; chmod -R u+w "$mod/gvisor"
  f=$(grep -rlE 'SetOOMScore\(cmd.Process.Pid, oomScoreMax\); err != nil \{|SetScore\(cmd.Process.Pid\); err != nil \{' "$mod/gvisor/pkg/shim") ||
    die "the shim of $GVISOR_SHIM_VERSION has no oom score call to relax; pick another GVISOR_SHIM_VERSION"
  sed -i -E 's/((SetScore\(cmd.Process.Pid\)|SetOOMScore\(cmd.Process.Pid, oomScoreMax\)); err != nil) \{/\1 \&\& !os.IsPermission(err) {/' "$f"
  grep -q 'os.IsPermission(err)' "$f" || die "patching $f failed"
  go mod edit -require "gvisor.dev/gvisor@$GVISOR_SHIM_VERSION" -replace "gvisor.dev/gvisor=./gvisor"
  cp gvisor/shim/main.go main.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$GVISOR_BIN/containerd-shim-runsc-v1.tmp" .
  mv "$GVISOR_BIN/containerd-shim-runsc-v1.tmp" "$GVISOR_BIN/containerd-shim-runsc-v1"
  cd / && rm -rf "$mod"
  log "built containerd-shim-runsc-v1 in $(( $(date +%s)-s ))s"
fi
log "gVisor ready in $GVISOR_BIN ($(( $(date +%s)-t0 ))s)"
