#!/usr/bin/env bash
# kwok (sigs.k8s.io/kwok) on the local cluster: fake nodes whose pods become Running and Ready
# without containers, for scale runs of the control-plane paths (internal/scale).
#   hack/cluster/kwok.sh build   build kwok $KWOK_VERSION from the Go module proxy into the cache
#   hack/cluster/kwok.sh up      (make kwok-up) build if needed, start kwok against the running
#                                cluster, create $KWOK_NODES fake nodes and wait until they are Ready
#   hack/cluster/kwok.sh down    (make kwok-down; also run by cluster-down) delete the fake nodes
#                                and stop kwok
#   hack/cluster/kwok.sh status  exit 0 when kwok runs and every fake node is Ready
#
# kwok only manages nodes annotated kwok.x-k8s.io/node=fake (never --manage-all-nodes: the real
# node would be taken over). The fake nodes carry the taint kwok.x-k8s.io/node=fake:NoSchedule,
# so no pod lands there without tolerating it (the e2e tests' pods never do), and the label
# kwok.x-k8s.io/node=fake for a nodeSelector. A pod that tolerates the taint and selects the label
# is Running and Ready (with an IP) as soon as it is scheduled; its deletion completes at once.
# kwok cannot run commands: nothing execs into these pods.
#
# Pod IPs come from 127.77.0.0/16 (a /22 per node; 127.78.0.0/24 for a node without podCIDR):
# should anything ever connect to a fake pod IP, the traffic stays on this machine's loopback. kwok opens no listening port (no
# --server-address), talks only to the API server on 127.0.0.1, runs from
# $CACHE/kwok-$KWOK_VERSION/bin, logs to $LOGS/kwok.log, PID in $RUN/kwok.pid.
# Env: KWOK_NODES (default 10, at most 64), KWOK_NODE_PODS (pods per node, default 1000).
# KWOK_STARTED_MARK=FILE: when this run starts kwok (rather than reusing it), it writes to FILE
# (hack/test.sh and hack/bench.sh stop kwok at the end only then).
. "$(dirname "$0")/lib.sh"
KWOK_DIR=$CACHE/kwok-$KWOK_VERSION
KWOK_BIN=$KWOK_DIR/bin/kwok
KWOK_NODES=${KWOK_NODES:-10}
KWOK_NODE_PODS=${KWOK_NODE_PODS:-1000}
KWOK_KEY=kwok.x-k8s.io/node
KWOK_SEL=kwok.x-k8s.io%2Fnode%3Dfake
KWOK_CONFIG=$ETC/kwok.yaml

# send METHOD PATH [BODY]: an API request as the cluster admin; prints the response body and
# fails on an HTTP error (the status code is in $code).
send() {
  local out
  out=$(curl -s --max-time 20 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
    -w '\n%{http_code}' "https://127.0.0.1:$API_PORT$2") || return 1
  code=${out##*$'\n'}
  printf '%s' "${out%$'\n'*}"
  [ "${code:0:1}" = 2 ]
}

# ready_fake_nodes: prints how many fake nodes are Ready.
ready_fake_nodes() {
  api "/api/v1/nodes?labelSelector=$KWOK_SEL" 2>/dev/null | tr -d ' \n' |
    grep -o '"type":"Ready","status":"True"' | wc -l
}

build() {
  [ -x "$KWOK_BIN" ] && return 0
  log "building kwok $KWOK_VERSION into $KWOK_DIR/bin (about 5 min on 2 cores)"
  local s=${EPOCHREALTIME/./} tmp
  mkdir -p "$KWOK_DIR/bin"
  tmp=$(mktemp -d "$KWOK_DIR/bin.XXXXXX")
  # GOTOOLCHAIN=local: build with the installed Go (kwok's go.mod wants 1.26), never download one
  GOBIN=$tmp CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" 2>&1 |
    { grep -v '^go: downloading' >&2 || true; }
  [ -x "$tmp/kwok" ] || { rm -rf "$tmp"; die "building kwok $KWOK_VERSION failed"; }
  mv "$tmp/kwok" "$KWOK_BIN"
  rmdir "$tmp"
  log "kwok $KWOK_VERSION built in $(since "$s")s"
}

# write_config: kwok's stages (the lifecycle it plays on the fake nodes and their pods), written
# here for the Stage API (kwok.x-k8s.io/v1alpha1) like the ones kwokctl embeds: node "fast"
# (initialise), node heartbeat (kwok renews the node leases itself), pod "fast" (Running and Ready
# at once, Job pods complete, deletions finish at once). Templates are Go templates over the
# object as JSON, with kwok's functions (Now, NodeIP, NodeConditions, NodeIPWith, PodIPWith).
write_config() {
  mkdir -p "$ETC"
  sed -e "s/@K8S_VERSION@/$K8S_VERSION/" -e "s/@PODS@/$KWOK_NODE_PODS/" >"$KWOK_CONFIG.tmp" <<'YAML'
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - jq: {key: '.status.conditions.[] | select(.type == "Ready") | .status', operator: NotIn, values: ["True"]}
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        conditions:
        {{ range NodeConditions }}
        - type: {{ .type | Quote }}
          status: {{ .status | Quote }}
          reason: {{ .reason | Quote }}
          message: {{ .message | Quote }}
          lastHeartbeatTime: {{ $now | Quote }}
          lastTransitionTime: {{ $now | Quote }}
        {{ end }}
        addresses:
        - {type: InternalIP, address: {{ NodeIP | Quote }}}
        - {type: Hostname, address: {{ .metadata.name | Quote }}}
        capacity: {cpu: "128", memory: 1Ti, pods: "@PODS@", ephemeral-storage: 1Ti}
        allocatable: {cpu: "128", memory: 1Ti, pods: "@PODS@", ephemeral-storage: 1Ti}
        nodeInfo:
          architecture: amd64
          operatingSystem: linux
          kubeletVersion: "@K8S_VERSION@"
          containerRuntimeVersion: kwok
          machineID: ""
          systemUUID: ""
          bootID: ""
          kernelVersion: ""
          osImage: ""
        phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - jq: {key: '.status.conditions.[] | select(.type == "Ready") | .status', operator: In, values: ["True"]}
  # kwok renews each node's Lease (--node-lease-duration-seconds=40), which is what keeps a node
  # alive for the node controller; the status heartbeat can be rare.
  delay:
    durationMilliseconds: 60000
    jitterDurationMilliseconds: 65000
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        conditions:
        {{ range NodeConditions }}
        - type: {{ .type | Quote }}
          status: {{ .status | Quote }}
          lastHeartbeatTime: {{ $now | Quote }}
        {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - jq: {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - jq: {key: .status.podIP, operator: DoesNotExist}
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        conditions:
        - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
        - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
        - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
        {{ with .spec.initContainers }}
        initContainerStatuses:
        {{ range . }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          ready: true
          restartCount: 0
          state:
            terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
        {{ end }}
        {{ end }}
        containerStatuses:
        {{ range .spec.containers }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          ready: true
          started: true
          restartCount: 0
          state:
            running: {startedAt: {{ $now | Quote }}}
        {{ end }}
        hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
        podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
        phase: Running
        startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - jq: {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - jq: {key: .status.phase, operator: In, values: [Running]}
    - jq: {key: '.metadata.ownerReferences.[].kind', operator: In, values: [Job]}
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        containerStatuses:
        {{ range .spec.containers }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          ready: false
          started: false
          restartCount: 0
          state:
            terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
        {{ end }}
        phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - jq: {key: .metadata.deletionTimestamp, operator: Exists}
  steps:
  - finalizers: {empty: true}
  - delete: true
YAML
  mv "$KWOK_CONFIG.tmp" "$KWOK_CONFIG"
}

# node_json I: the fake node kwok-node-<I>, with its /22 of pod IPs in 127.77.0.0/16.
node_json() {
  local name
  name=$(printf 'kwok-node-%03d' "$1")
  cat <<JSON
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$name",
 "labels":{"$KWOK_KEY":"fake","type":"kwok","kubernetes.io/hostname":"$name","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"},
 "annotations":{"$KWOK_KEY":"fake","node.alpha.kubernetes.io/ttl":"0"}},
 "spec":{"podCIDR":"127.77.$(($1 * 4)).0/22","podCIDRs":["127.77.$(($1 * 4)).0/22"],
  "taints":[{"key":"$KWOK_KEY","value":"fake","effect":"NoSchedule"}]}}
JSON
}

up() {
  require_root "make kwok-up"
  [ "$KWOK_NODES" -ge 1 ] && [ "$KWOK_NODES" -le 64 ] || die "KWOK_NODES=$KWOK_NODES: 1 to 64 (each node has a /22 of 127.77.0.0/16)"
  lock
  cluster_healthy || die "the local cluster is not running: make cluster-up first"
  build
  lap build-kwok
  if pid_of kwok >/dev/null; then
    log "kwok already running (pid $(pid_of kwok)); reusing it"
  else
    write_config
    # Node leases of 40 s as the kubelet's (kwok renews them; without the flag it makes none and
    # the node controller marks the nodes NotReady); warnings only in the log (not a line per pod).
    start kwok "$KWOK_BIN" --kubeconfig="$ETC/admin-embedded.kubeconfig" --config="$KWOK_CONFIG" \
      --manage-nodes-with-annotation-selector="$KWOK_KEY=fake" --node-lease-duration-seconds=40 \
      --node-ip=127.0.0.1 --cidr=127.78.0.0/24 --v=WARN
    [ -z "${KWOK_STARTED_MARK:-}" ] || echo kwok >"$KWOK_STARTED_MARK"
    lap start-kwok
  fi
  local i n=0
  for ((i = 0; i < KWOK_NODES; i++)); do
    if send POST /api/v1/nodes "$(node_json "$i")" >/dev/null; then n=$((n + 1))
    elif [ "${code:-}" != 409 ]; then die "creating fake node $i failed (HTTP ${code:-none})"; fi
  done
  log "$n fake nodes created, $((KWOK_NODES - n)) already there"
  waitfor "$KWOK_NODES fake nodes Ready" 60 kwok test_ready "$KWOK_NODES"
  lap kwok-up
  log "kwok: $(ready_fake_nodes) fake nodes Ready (label and taint $KWOK_KEY=fake; log $LOGS/kwok.log)"
}

test_ready() { [ "$(ready_fake_nodes)" -ge "$1" ]; }

down() {
  require_root "make kwok-down"
  lock
  # The fake nodes go first, while kwok still runs: pods on them are then removed by the pod
  # garbage collector (a pod bound to a node that does not exist).
  if api /readyz >/dev/null 2>&1; then
    if send DELETE "/api/v1/nodes?labelSelector=$KWOK_SEL" >/dev/null; then
      log "fake nodes deleted"
    else
      log "deleting the fake nodes failed (HTTP ${code:-none})"
    fi
  fi
  local p
  if p=$(pid_of kwok); then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do [ -d "/proc/$p" ] || break; sleep 0.1; done
    if p=$(pid_of kwok); then kill -9 "$p" 2>/dev/null || true; fi
    log "kwok stopped"
  fi
  rm -f "$RUN/kwok.pid" "$KWOK_CONFIG"
}

status() {
  local p n
  p=$(pid_of kwok) || { echo "kwok: not running"; return 1; }
  n=$(ready_fake_nodes)
  echo "kwok: running (pid $p), $n fake nodes Ready"
  [ "$n" -ge 1 ]
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 build|up|down|status" >&2; exit 2 ;;
esac
