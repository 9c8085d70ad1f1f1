#!/usr/bin/env bash
# make bench: the benchmarks. Prints one table (also written to bench.txt in the checkout root).
#   hack/bench.sh [flags]          flags of internal/bench, e.g. -quick, -only 1,3, -exec-iters 200
#   BENCH_ARGS=-quick make bench   the same through make
# 1. starts the local cluster or reuses it (make cluster-up; skipped when KUBECONFIG is set);
# 2. runs the in-memory Go benchmarks of the root package (go test -bench);
# 3. starts kwok's fake nodes on the local cluster (make kwok-up; stopped again at the end when
#    this run started them) for row 7, the simulated scale (internal/scale); skipped with
#    KUBECONFIG set, BENCH_SCALE=0, or an -only without 7;
# 4. runs internal/bench, which measures podsandbox against kubectl and bare client-go on the
#    cluster, in its own namespace (deleted at the end, also on Ctrl-C), folds 2. into the table,
#    builds the CLI (cmd/podsandbox) for row 9 (`podsandbox exec` against kubectl exec, and
#    `podsandbox mcp` over stdio and HTTP against the library call it wraps), runs the scale
#    program on real pods for row 8 (200 sessions), and last on kwok's nodes (-scale) for row 7.
# Exit status: 0; 1 on a failure to measure; non-zero as well when podsandbox delivered wrong bytes
# without an error (silent truncation). A MISS against a target is a finding, not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH

# shellcheck disable=SC2206
args=(${BENCH_ARGS:-} "$@")
quick=0 only="" prev=""
for a in "${args[@]}"; do
  case $a in -quick | --quick | -quick=true | --quick=true) quick=1 ;; -only=* | --only=*) only=${a#*=} ;; esac
  case $prev in -only | --only) only=$a ;; esac
  prev=$a
done

if [ -z "${KUBECONFIG:-}" ]; then
  echo "=== make cluster-up (starts the local cluster or reuses it)" >&2
  make --no-print-directory cluster-up >&2
fi

count=5 benchtime=1s
if [ $quick = 1 ]; then count=1 benchtime=200ms; fi
pattern='^(BenchmarkGetOrCreateLive|BenchmarkCleanupSweep10k)$'
gobench=$(mktemp)
kwok_mark=$(mktemp)
cleanup() {
  rc=$?
  if [ -s "$kwok_mark" ]; then
    echo "=== stopping kwok (this run started it)" >&2
    hack/cluster/kwok.sh down >&2 || rc=1
  fi
  rm -f "$gobench" "$kwok_mark"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scale=()
if [ -z "${KUBECONFIG:-}" ] && [ "${BENCH_SCALE:-1}" != 0 ] && { [ -z "$only" ] || [[ ",$only," == *,7,* ]]; }; then
  echo "=== hack/cluster/kwok.sh up (fake nodes for row 7)" >&2
  KWOK_STARTED_MARK=$kwok_mark hack/cluster/kwok.sh up >&2
  scale=(-scale)
fi
cmd="go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ."
echo "=== $cmd" >&2
go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" . | tee "$gobench" >&2

echo "=== go run ./internal/bench -gobench FILE ${scale[*]} ${args[*]}" >&2
go run ./internal/bench -gobench "$gobench" -gobench-cmd "$cmd" "${scale[@]}" "${args[@]}"
