#!/usr/bin/env bash
# make test (and make unit, make e2e): the project's test command.
#   hack/test.sh        unit tests; then the local cluster (reused when it already runs, else
#                       started and, at the end, stopped again, also on failure); then the e2e tests
#   hack/test.sh unit   unit tests only: go test -race ./... in every module (root, adapters/)
#   hack/test.sh e2e    e2e tests only, against the running cluster (KUBECONFIG or .cluster/kubeconfig)
#   hack/test.sh chaos  the fault drills only (TestDrill*: cut streams, deleted pods, killed callers,
#                       a full disk; then TestNodeDrill*: the kubelet paused, the API server
#                       crashed), against the running cluster; `hack/test.sh` and `e2e` run them
#                       too, the node drills alone at the end
# The e2e tests are the files with //go:build e2e; only their packages run with -tags e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH
MODULES="."
[ -f adapters/go.mod ] && MODULES="$MODULES adapters"
say() { printf '\n=== %s\n' "$*" >&2; }

unit() {
  local m
  for m in $MODULES; do
    say "unit tests ($m): go test -race ./..."
    (cd "$m" && go test -race ./...)
  done
}

# e2e_packages: the packages of one module holding //go:build e2e test files (not nested modules).
e2e_packages() {
  { grep -rlE --include='*_test.go' '^//go:build .*\be2e\b' . 2>/dev/null || true; } | while read -r f; do
    d=$(dirname "$f")
    # skip files that belong to a nested module
    p=$d; nested=0
    while [ "$p" != . ]; do [ -f "$p/go.mod" ] && nested=1 && break; p=$(dirname "$p"); done
    [ $nested = 0 ] && echo "$d"
  done | sort -u
}

# kwok_up: the fake nodes the scale e2e test (internal/scale) runs on, on the local cluster
# (with KUBECONFIG set, that test fails and says `make kwok-up`). kwok_down stops kwok at the end
# only when this run started it.
kwok_mark=""
kwok_up() {
  [ -z "${KUBECONFIG:-}" ] || return 0
  kwok_mark=$(mktemp)
  say "kwok: fake nodes for the scale e2e test (hack/cluster/kwok.sh up)"
  KWOK_STARTED_MARK=$kwok_mark hack/cluster/kwok.sh up
}
kwok_down() {
  if [ -n "$kwok_mark" ] && [ -s "$kwok_mark" ]; then
    say "stopping kwok (this run started it)"
    hack/cluster/kwok.sh down || return 1
  fi
  [ -z "$kwok_mark" ] || rm -f "$kwok_mark"
  kwok_mark=""
}

e2e() {
  local m pkgs
  for m in $MODULES; do
    pkgs=$(cd "$m" && e2e_packages)
    [ -n "$pkgs" ] || continue
    case " $(echo $pkgs) " in *" ./internal/scale "*) [ -n "$kwok_mark" ] || kwok_up ;; esac
    say "e2e tests ($m):" $pkgs
    # shellcheck disable=SC2086
    (cd "$m" && go test -race -tags e2e -count=1 -p 1 -timeout 30m -skip '^TestNodeDrill' $pkgs)
  done
  node_drills
}

# node_drills: the drills that pause and restart the local cluster's own daemons
# (hack/cluster/fault.sh) run alone, after everything else, since they disturb whatever runs
# beside them. They need the local cluster: with KUBECONFIG pointing elsewhere they are skipped,
# and this says so.
node_drills() {
  if [ -n "${KUBECONFIG:-}" ] && [ "$(realpath -m "$KUBECONFIG")" != "$(realpath -m .cluster/kubeconfig)" ]; then
    say "node drills: skipped (they pause and restart the local cluster's daemons; KUBECONFIG=$KUBECONFIG is another cluster)"
    return 0
  fi
  say "node drills: go test -race -tags e2e -run '^TestNodeDrill' . (alone: they pause the kubelet and restart the API server)"
  go test -race -tags e2e -count=1 -timeout 10m -run '^TestNodeDrill' .
}

case "${1:-all}" in
  unit) unit ;;
  chaos)
    say "fault drills: go test -race -tags e2e -run '^TestDrill' ."
    go test -race -tags e2e -count=1 -timeout 20m -run '^TestDrill' .
    node_drills
    ;;
  e2e)
    trap 'rc=$?; kwok_down || rc=1; exit $rc' EXIT
    e2e
    ;;
  all)
    say "packages: hack/cluster/packages.sh (the unit tests run busybox and GNU grep)"
    hack/cluster/packages.sh
    unit
    mark=$(mktemp)
    cleanup() {
      rc=$?
      kwok_down || rc=1
      if [ -s "$mark" ]; then
        say "stopping the cluster this run started"
        hack/cluster/down.sh || rc=1
      fi
      rm -f "$mark"
      exit $rc
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    say "cluster: make cluster-up"
    STARTED_MARK=$mark hack/cluster/up.sh
    [ -s "$mark" ] || say "reusing the running cluster; it stays up"
    e2e
    ;;
  *) echo "usage: hack/test.sh [unit|e2e]" >&2; exit 2 ;;
esac
