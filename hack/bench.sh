#!/usr/bin/env bash
# make bench: the benchmarks. Prints one table (also written to bench.txt in the checkout root).
#   hack/bench.sh [flags]          flags of internal/bench, e.g. -quick, -only 1,3, -exec-iters 200
#   BENCH_ARGS=-quick make bench   the same through make
# 1. starts the local cluster or reuses it (make cluster-up; skipped when KUBECONFIG is set);
# 2. runs the in-memory Go benchmarks of the root package (go test -bench);
# 3. runs internal/bench, which measures podsandbox against kubectl and bare client-go on the
#    cluster, in its own namespace (deleted at the end, also on Ctrl-C), and folds 2. into the table.
# Exit status: 0; 1 on a failure to measure; non-zero as well when podsandbox delivered wrong bytes
# without an error (silent truncation). A MISS against a target is a finding, not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH

# shellcheck disable=SC2206
args=(${BENCH_ARGS:-} "$@")
quick=0
for a in "${args[@]}"; do
  case $a in -quick | --quick | -quick=true | --quick=true) quick=1 ;; esac
done

if [ -z "${KUBECONFIG:-}" ]; then
  echo "=== make cluster-up (starts the local cluster or reuses it)" >&2
  make --no-print-directory cluster-up >&2
fi

count=5 benchtime=1s
if [ $quick = 1 ]; then count=1 benchtime=200ms; fi
pattern='^(BenchmarkGetOrCreateLive|BenchmarkCleanupSweep10k)$'
gobench=$(mktemp)
trap 'rm -f "$gobench"' EXIT
cmd="go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ."
echo "=== $cmd" >&2
go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" . | tee "$gobench" >&2

echo "=== go run ./internal/bench -gobench FILE ${args[*]}" >&2
go run ./internal/bench -gobench "$gobench" -gobench-cmd "$cmd" "${args[@]}"
