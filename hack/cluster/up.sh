#!/usr/bin/env bash
# make cluster-up: a single-node Kubernetes cluster from bare processes (containerd, etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet), all on 127.0.0.1.
#
#  1. installs missing Debian packages (packages.sh);
#  2. if the cluster already runs and is healthy: refreshes the images and writes this checkout's
#     kubeconfig, and that is all (a second checkout reuses the cluster in seconds);
#  3. a stale cluster (killed processes, leftover bridge, mounts, cgroups) is cleaned up first;
#  4. builds the binaries when missing or of another version, the images (in the background),
#     the config and PKI; starts the daemons with setsid (PID files in $RUN, logs in $STATE/log);
#     imports the images; waits for the node to be Ready and the default ServiceAccount;
#  5. writes the admin kubeconfig to $KUBECONFIG_OUT and prints timings.
#
# NETWORK RULE (enforced here and by down.sh / check-clean.sh): pods must never be able to send
# traffic off this machine. net.ipv4.ip_forward must be 0 and stay 0; the CNI bridge has no gateway
# and no masquerade, pods get no default route; every daemon listens on 127.0.0.1 only.
# Env: IMAGES=0 skips the image build and import. STARTED_MARK=FILE: when this run starts the
# cluster (rather than reusing it), it writes to FILE.
. "$(dirname "$0")/lib.sh"
require_root "make cluster-up"
mkdir -p "$(dirname "$RUN")"
lock

fwd=$(ip_forward)
[ "$fwd" = 0 ] || die "net.ipv4.ip_forward is $fwd on this host. The cluster requires 0 (pods must never be able to reach beyond this machine). Something else turned it on; set it back (sysctl -w net.ipv4.ip_forward=0) once you know nothing needs it."

"$HACK/packages.sh"
lap packages

write_kubeconfig() {
  mkdir -p "$(dirname "$KUBECONFIG_OUT")"
  install -m 600 "$ETC/admin-embedded.kubeconfig" "$KUBECONFIG_OUT"
  log "kubeconfig: $KUBECONFIG_OUT   (kubectl --kubeconfig $KUBECONFIG_OUT get nodes)"
}

# start_netpol: the NetworkPolicy enforcer, kube-router's firewall alone, on the host (it writes
# iptables and ipset rules for the pods of this node). Waits until its first full sync.
start_netpol() {
  # The host tracks connections only once some rule asks for their state (there is no kube-proxy
  # here), so connections made before kube-router's first pod rule had no conntrack entry: their
  # later packets from the pod looked NEW and met the pod's egress REJECT, which stalled or lost
  # replies. An empty chain jumped to through a state match keeps tracking on from the start.
  iptables -N PSBX-CONNTRACK 2>/dev/null || true
  iptables -C INPUT -m conntrack --ctstate NEW,ESTABLISHED,RELATED,INVALID,UNTRACKED -j PSBX-CONNTRACK 2>/dev/null ||
    iptables -I INPUT 1 -m conntrack --ctstate NEW,ESTABLISHED,RELATED,INVALID,UNTRACKED -j PSBX-CONNTRACK
  start kube-router "$KUBE_ROUTER_BIN/kube-router" --kubeconfig="$ETC/admin-embedded.kubeconfig" \
    --hostname-override="$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
    --enable-cni=false --service-cluster-ip-range="$SVC_CIDR" --health-port=0 --metrics-port=0 -v=1
  waitfor "kube-router's first sync" 60 kube-router iptables -S KUBE-ROUTER-FORWARD
  log "NetworkPolicy enforcer: kube-router $KUBE_ROUTER_VERSION (firewall only)"
}

# ---- already running? ----
if cluster_healthy; then
  running=$(cat "$RUN/version" 2>/dev/null || echo unknown)
  [ "$running" = "$K8S_VERSION" ] || die "a cluster of version $running is running, this checkout wants $K8S_VERSION: run make cluster-down first"
  rg=$(cat "$RUN/gvisor" 2>/dev/null || echo 0)
  [ "$rg" = "$GVISOR" ] || die "the running cluster was started with GVISOR=$rg, this run asks for GVISOR=$GVISOR: run make cluster-down first"
  rn=$(cat "$RUN/netpol" 2>/dev/null || echo 0)
  [ "$rn" = "$NETPOL" ] || die "the running cluster was started with NETPOL=$rn, this run asks for NETPOL=$NETPOL: run make cluster-down first"
  if [ "$NETPOL" = 1 ] && ! pid_of kube-router >/dev/null; then start_netpol; fi
  log "cluster already running (started $(cat "$RUN/started" 2>/dev/null)); reusing it"
  if [ "${IMAGES:-1}" != 0 ]; then "$HACK/images.sh"; lap images; fi
  write_kubeconfig
  lap cluster-up
  exit 0
fi

# ---- stale or half-dead cluster from an earlier run? ----
stale=""
alive=0
for d in $DAEMONS; do
  if pid_of "$d" >/dev/null; then stale="$stale $d(running)"; alive=$((alive + 1))
  elif [ -f "$RUN/$d.pid" ]; then stale="$stale $d(dead)"; fi
done
if [ "$alive" = 6 ]; then
  log "all daemons run but the cluster is not healthy yet; waiting up to 30s"
  for _ in $(seq 300); do cluster_healthy && break; sleep 0.1; done
  if cluster_healthy; then exec "$0" "$@"; fi
fi
ip link show "$BRIDGE" >/dev/null 2>&1 && stale="$stale bridge:$BRIDGE"
[ -n "$(our_mounts)" ] && stale="$stale mounts:$(our_mounts | wc -l)"
[ -n "$(kubepods_cgroups)" ] && stale="$stale kubepods-cgroups"
[ -n "$(shim_pids)" ] && stale="$stale shims:$(shim_pids | wc -l)"
[ -d "$RUN/containerd" ] && stale="$stale containerd-state"
if [ -n "$stale" ]; then
  log "found a stale or unhealthy cluster ($stale ); cleaning it up"
  "$HACK/down.sh" || die "could not clean up the stale cluster (see above)"
  lap stale-cleanup
fi

# ---- nothing else may hold our ports or our pod network ----
for p in $PORTS; do
  h=$(port_holder "$p")
  [ -z "$h" ] || die "port $p is already in use: $h (ss -ltnp 'sport = :$p'). Stop that process; the cluster needs ports $PORTS on 127.0.0.1."
done
r=$(ip -4 route show "$POD_CIDR" 2>/dev/null || true)
[ -z "$r" ] || die "the pod network $POD_CIDR is already routed on this host ($r); another cluster (bridge) is using it"

# ---- binaries, images, config ----
mkdir -p "$RUN" "$LOGS"
# The image build runs in its own process group so that a failed cluster-up can stop all of it
# (SIGTERM lets imagebuild unmount and remove a half-made debootstrap tree).
setsid "$HACK/images.sh" build >"$LOGS/images.log" 2>&1 9>&- &
images_job=$!
stop_images() {
  if [ -n "$images_job" ] && kill -0 "$images_job" 2>/dev/null; then
    kill -TERM -- "-$images_job" 2>/dev/null || true
    wait "$images_job" 2>/dev/null || true
  fi
}
trap stop_images EXIT

have() { local v; v=$("$BIN/$1" --version 2>/dev/null) && [[ $v == *"$2"* ]]; }
need=""
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet; do have "$c" "$K8S_VERSION" || need="$need $c"; done
if [ -n "$need" ]; then
  log "building kubernetes $K8S_VERSION ($need ) into $BIN; a few minutes on a fresh machine"
  "$HACK/build-k8s.sh" 2>&1 | { grep -v '^go: downloading' >&2 || true; }
fi
lap build-k8s
if ! have etcd "Version: ${ETCD_VERSION#v}"; then
  log "building etcd $ETCD_VERSION into $BIN"
  "$HACK/build-etcd.sh" 2>&1 | { grep -v '^go: downloading' >&2 || true; }
fi
lap build-etcd
if [ "$GVISOR" = 1 ] && ! { have_runsc && have_shim; }; then
  log "building gVisor (runsc and its containerd shim) into $GVISOR_BIN; about 4 minutes on a fresh machine (GVISOR=0 skips it)"
  "$HACK/build-gvisor.sh" 2>&1 | { grep -v '^go: downloading' >&2 || true; }
  have_runsc && have_shim || die "building gVisor failed (see above); GVISOR=0 starts the cluster without it"
fi
lap build-gvisor
if [ "$NETPOL" = 1 ] && ! have_kube_router; then
  log "building kube-router $KUBE_ROUTER_VERSION into $KUBE_ROUTER_BIN; a few minutes on a fresh machine (NETPOL=0 skips it)"
  "$HACK/build-kube-router.sh" 2>&1 | { grep -v '^go: downloading' >&2 || true; }
  have_kube_router || die "building kube-router failed (see above); NETPOL=0 starts the cluster without a NetworkPolicy enforcer"
fi
lap build-kube-router
"$HACK/gen-config.sh"
lap config

# From here on this run owns the cluster; hack/test.sh stops it at the end only then.
[ -z "${STARTED_MARK:-}" ] || echo "$RUN" >"$STARTED_MARK"

# ---- network: our bridge with the .1 address; forwarding stays off ----
ip link add "$BRIDGE" type bridge
ip addr add "${POD_CIDR%.*}.1/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
echo "$fwd" >"$RUN/ip_forward.at-start"
echo "$K8S_VERSION" >"$RUN/version"
echo "$GVISOR" >"$RUN/gvisor"
echo "$NETPOL" >"$RUN/netpol"
echo "$(date '+%F %T') from $ROOT" >"$RUN/started"

# ---- daemons ----
# the runsc shim is found on containerd's PATH only (its runtime_path is not used for pod sandboxes)
PATH=$GVISOR_BIN:$PATH start containerd containerd --config "$ETC/containerd.toml"
waitfor containerd 30 containerd ctr_ version
lap containerd

mkdir -p "$ETCD_DATA" && chmod 700 "$ETCD_DATA"
start etcd "$BIN/etcd" --name podsandbox --data-dir "$ETCD_DATA" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster podsandbox=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --log-level warn
waitfor etcd 30 etcd curl -sf --max-time 2 http://127.0.0.1:2381/health
lap etcd

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --service-cluster-ip-range="$SVC_CIDR" \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=Hostname,InternalIP \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false --v=1
waitfor "kube-apiserver /readyz" 120 kube-apiserver api /readyz
lap kube-apiserver

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$ETC/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$ETC/controller-manager.kubeconfig" --authorization-kubeconfig="$ETC/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" --profiling=false --v=1
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$ETC/scheduler.kubeconfig" \
  --authentication-kubeconfig="$ETC/scheduler.kubeconfig" --authorization-kubeconfig="$ETC/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
start kubelet "$BIN/kubelet" --config="$ETC/kubelet.yaml" --kubeconfig="$ETC/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --root-dir="$STATE/kubelet" --v=1

# ---- images (built in the background meanwhile) ----
if ! wait "$images_job"; then
  images_job=""
  cat "$LOGS/images.log" >&2
  die "building the images failed (log: $LOGS/images.log)"
fi
images_job=""
grep -E 'MB|skipping' "$LOGS/images.log" >&2 || true
if [ "${IMAGES:-1}" != 0 ]; then "$HACK/images.sh" import; fi
lap images

# kubelet's healthz first: after a restart the node object still says Ready from the last run
waitfor "node $NODE_NAME Ready" 180 kubelet kubelet_ready
lap node-ready
waitfor "the default ServiceAccount" 60 kube-controller-manager api /api/v1/namespaces/default/serviceaccounts/default
lap default-serviceaccount

# ---- RuntimeClass gvisor: present exactly when the node has the handler ----
if [ "$GVISOR" = 1 ]; then
  code=$(api_write POST /apis/node.k8s.io/v1/runtimeclasses \
    '{"apiVersion":"node.k8s.io/v1","kind":"RuntimeClass","metadata":{"name":"gvisor"},"handler":"gvisor"}')
  case $code in 201|409) ;; *) die "creating RuntimeClass gvisor failed (HTTP $code)" ;; esac
  log "RuntimeClass gvisor (runsc $GVISOR_RUNSC_VERSION, platform systrap)"
else
  code=$(api_write DELETE /apis/node.k8s.io/v1/runtimeclasses/gvisor '')
  case $code in 200|404) ;; *) die "deleting RuntimeClass gvisor failed (HTTP $code)" ;; esac
fi
lap runtimeclass
if [ "$NETPOL" = 1 ]; then start_netpol; fi
lap netpol

# ---- the network rule, checked ----
ours=" "
for d in $DAEMONS kube-router; do ours="$ours$(pid_of "$d" || true) "; done
bad=$(ss -Htulnp 2>/dev/null | awk -v ours="$ours" '{
  n = split($0, a, "pid="); for (i = 2; i <= n; i++) { split(a[i], b, ","); if (index(ours, " " b[1] " ") && $5 !~ /^(127\.0\.0\.1|\[::1\]):/) print $5, $7 } }')
[ -z "$bad" ] || die "NETWORK RULE: a cluster daemon listens beyond loopback: $bad"
[ "$(ip_forward)" = 0 ] || die "NETWORK RULE BROKEN: net.ipv4.ip_forward changed to $(ip_forward) while the cluster started. Set it back to 0 now (sysctl -w net.ipv4.ip_forward=0) and find out what changed it."

write_kubeconfig
lap cluster-up
