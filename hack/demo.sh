#!/usr/bin/env bash
# make demo: see podsandbox work, end to end, on this machine.
#
#   1. builds the examples (examples/quickstart, agent, sessions);
#   2. finds a cluster: KUBECONFIG when it is set and the cluster answers, else the local cluster
#      (make cluster-up: started, or reused when it already runs; it builds and imports the
#      images too). The local cluster needs root;
#   3. runs examples/quickstart (API mode with python3, HTTP mode with the server image),
#      examples/agent (the one-shot agent through the console toolset) and
#      examples/sessions -demo (per-user sandboxes behind an HTTP service, a two-user client),
#      then a short session with the podsandbox CLI (cmd/podsandbox);
#   4. prints each step's time and leaves the cluster running.
#
# Env: AGENT_MODEL (default scripted: offline) is passed to the agent as -model; AGENT_MODEL=auto
# uses a real LLM when ANTHROPIC_API_KEY or OPENAI_API_KEY is set. NAMESPACE (default default)
# is where the sandbox pods run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin
NAMESPACE=${NAMESPACE:-default}
AGENT_MODEL=${AGENT_MODEL:-scripted}

now() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%01d' $(($1 / 1000000)) $(($1 / 100000 % 10)); }
T0=$(now)
TIMES=()
header() { printf '\n━━━ %s\n\n' "$*"; }
fail() {
  printf '\ndemo: FAILED: %s\n' "$1" >&2
  [ -z "${2:-}" ] || printf 'demo: %s\n' "$2" >&2
  exit 1
}

# step NAME TITLE HINT CMD...: runs CMD under a header, records its time; on failure names the step.
step() {
  local name=$1 title=$2 hint=$3 t rc=0; shift 3
  header "$title"
  t=$(now)
  "$@" || rc=$?
  local took=$(( $(now) - t ))
  [ "$rc" = 0 ] || fail "$name (exit $rc after $(secs $took)s; its message is above)" "$hint"
  TIMES+=("$(printf '%-22s %6ss' "$name" "$(secs $took)")")
}

command -v go >/dev/null 2>&1 || fail "Go is not installed" "install Go 1.26 (the scripts look in /usr/local/go/bin) and run make demo again"

root_hint="run make demo as root, or point KUBECONFIG at a running cluster"
if [ -z "${KUBECONFIG:-}" ] && [ "$(id -u)" != 0 ]; then
  fail "the local cluster needs root (it runs containerd and the kubelet)" "$root_hint"
fi

# A stable directory, so that a second run finds the binaries up to date (go build relinks nothing).
BIN=$ROOT/.cluster/demo-bin
mkdir -p "$BIN"
step build "build the examples" "the examples do not compile; see the compiler's message" \
  go build -o "$BIN/" ./examples/quickstart ./examples/agent ./examples/sessions ./cmd/podsandbox

# ---- the cluster ----
external=""
if [ -n "${KUBECONFIG:-}" ]; then
  header "cluster: KUBECONFIG=$KUBECONFIG"
  if "$BIN/quickstart" -kubeconfig "$KUBECONFIG" -check 2>"$BIN/check.err"; then
    external=$KUBECONFIG
    echo "Using it. The images podsandbox.local/* must already be on its nodes (make kind-up loads them into kind)."
  else
    echo "It does not answer ($(head -n1 "$BIN/check.err")); using the local cluster instead."
  fi
fi
if [ -z "$external" ]; then
  [ "$(id -u)" = 0 ] || fail "the local cluster needs root (it runs containerd and the kubelet)" "$root_hint"
  unset KUBECONFIG
  step cluster-up "cluster: make cluster-up (starts it, or reuses it; builds and imports the images)" \
    "fix what make cluster-up reports above, then run make demo again" \
    hack/cluster/up.sh
  export KUBECONFIG=$ROOT/.cluster/kubeconfig
fi
common=(-kubeconfig "$KUBECONFIG" -namespace "$NAMESPACE")

# ---- the examples ----
step quickstart "examples/quickstart: API mode, then HTTP mode" \
  "try: go run ./examples/quickstart -v" \
  "$BIN/quickstart" "${common[@]}"
step agent "examples/agent: the one-shot agent through the toolset" \
  "try: go run ./examples/agent -v" \
  "$BIN/agent" "${common[@]}" -model "$AGENT_MODEL"
step "sessions -demo" "examples/sessions -demo: a sandbox per user behind HTTP" \
  "try: go run ./examples/sessions -demo -v" \
  "$BIN/sessions" "${common[@]}" -demo

# cli_demo: a short session with the podsandbox CLI, each command shown as typed.
cli_demo() {
  local id="demo-cli-$$" rc=0
  shown() {
    local a line='$ podsandbox'
    for a in "$@"; do case $a in *[[:space:]]*) line="$line '$a'" ;; *) line="$line $a" ;; esac; done
    echo "$line"
    "$BIN/podsandbox" --kubeconfig "$KUBECONFIG" -n "$NAMESPACE" "$@"
  }
  shown run podsandbox.local/busybox:1 --mode api --id "$id" || return 1
  shown exec "$id" -- 'echo "hello from $(hostname)"; exit 3' || rc=$?
  echo "(exit code $rc: the command's own)"
  [ "$rc" = 3 ] || { shown rm "$id"; return 1; }
  shown list "$id" || { shown rm "$id"; return 1; }
  shown rm "$id"
}
step cli "cmd/podsandbox: the command line" \
  "try: go run ./cmd/podsandbox --help" \
  cli_demo

header "done in $(secs $(( $(now) - T0 )))s"
printf '  %s\n' "${TIMES[@]}"
printf '  %-22s %6ss\n' total "$(secs $(( $(now) - T0 )))"
echo
if [ -n "$external" ]; then
  echo "The cluster at KUBECONFIG=$external was left as it was."
else
  echo "The cluster keeps running; stop it with \`make cluster-down\`."
fi
echo "Next: the examples' READMEs (examples/*/README.md); go run ./examples/sessions serves the HTTP API on 127.0.0.1:8088."
