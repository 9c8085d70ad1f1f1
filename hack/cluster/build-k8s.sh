#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet at $K8S_VERSION from the
# Go module proxy into $BIN. k8s.io/kubernetes cannot be `go install`ed (its go.mod points every
# staging module at ./staging with v0.0.0), so a scratch module requires it and replaces each staging
# module k8s.io/X with its published v0.<minor>.<patch>.
. "$(dirname "$0")/lib.sh"
COMPONENTS=${COMPONENTS:-"kube-apiserver kube-controller-manager kube-scheduler kubelet"}
BUILD=$CACHE/k8s-$K8S_VERSION/build
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
mkdir -p "$BUILD" "$BIN"
cd "$BUILD"
t0=$(date +%s)
MODDIR=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -n "$MODDIR" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
{
  printf 'module k8sbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$MODDIR/go.mod" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
{
  printf '//go:build tools\n\npackage k8sbuild\n\nimport (\n'
  for c in $COMPONENTS; do printf '\t_ "k8s.io/kubernetes/cmd/%s/app"\n' "$c"; done
  echo ")"
} > tools.go
go mod tidy
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
LDFLAGS="-s -w
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1
 -X k8s.io/client-go/pkg/version.gitMinor=$MINOR"
for c in $COMPONENTS; do
  s=$(date +%s)
  go build -trimpath -ldflags "$(echo $LDFLAGS)" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$BIN/$c.tmp" "$BIN/$c"
  log "built $c in $(( $(date +%s)-s ))s"
done
log "kubernetes $K8S_VERSION built in $(( $(date +%s)-t0 ))s"
