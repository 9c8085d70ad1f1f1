#!/usr/bin/env bash
# make cluster-down: stops exactly the daemons recorded in $RUN/*.pid, kills the pod containers
# through containerd, and removes what they left behind (mounts, network namespaces, the bridge,
# kubepods cgroups, shim sockets, CNI IP allocations, $RUN). The cluster's state (etcd data in
# tmpfs, containerd root, PKI) is kept for a quick restart; WIPE=1 drops it as well.
# Then check-clean.sh must find nothing left, and net.ipv4.ip_forward must be what it was at start.
# Also used by up.sh to clean up after a cluster that was killed.
. "$(dirname "$0")/lib.sh"
require_root "make cluster-down"
mkdir -p "$(dirname "$RUN")"
lock
T=${EPOCHREALTIME/./}

fwd_start=$(cat "$RUN/ip_forward.at-start" 2>/dev/null || echo 0)

# stop NAME...: SIGTERM the recorded, still-ours PIDs; wait up to 10 s; SIGKILL what is left.
stop() {
  local n p pids=()
  for n in "$@"; do
    # CONT first: a daemon a killed fault.sh left stopped would not act on SIGTERM
    if p=$(pid_of "$n"); then kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null && pids+=("$p"); fi
    rm -f "$RUN/$n.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq 100); do
    local alive=0
    for p in "${pids[@]}"; do [ -d "/proc/$p" ] && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}

# kwok first, while the API server answers: it deletes its fake nodes (make kwok-up), then stops.
"$HACK/kwok.sh" down || log "kwok.sh down failed; stopping kwok anyway"
stop kwok kube-router kubelet kube-scheduler kube-controller-manager
# kube-router's rules and sets stay in the kernel after it stops.
if netpol_left >/dev/null; then netpol_cleanup || log "removing kube-router's iptables rules and ipsets failed"; fi

# Pod containers go through containerd. When it was killed but left shims or task state behind,
# start it once more to clean up (it reconnects to its shims).
if ! pid_of containerd >/dev/null && [ -f "$ETC/containerd.toml" ] &&
   { [ -n "$(shim_pids)" ] || [ -d "$RUN/containerd/io.containerd.runtime.v2.task/k8s.io" ]; }; then
  log "starting containerd to remove the pods of a cluster that was killed"
  mkdir -p "$RUN" "$LOGS"
  if (PATH=$GVISOR_BIN:$PATH start containerd containerd --config "$ETC/containerd.toml"); then
    for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
  else
    log "containerd did not start; removing its leftovers by force"
  fi
fi
if pid_of containerd >/dev/null && ctr_ version >/dev/null 2>&1; then
  tasks=$(ctr_ tasks ls -q 2>/dev/null || true)
  for c in $tasks; do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
  for c in $tasks; do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
  for c in $(ctr_ containers ls -q 2>/dev/null || true); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
fi
stop kube-apiserver etcd containerd

# Shims exit once their task is deleted; any still here (their containerd was killed) are ours by
# their -address. Then any process still in a kubepods cgroup is a pod process of this cluster.
for _ in $(seq 30); do [ -z "$(shim_pids)" ] && break; sleep 0.1; done
for p in $(shim_pids); do kill -9 "$p" 2>/dev/null || true; done
# gVisor's sandbox and gofer processes (runsc re-executes itself) outlive a killed shim.
for p in $(gvisor_pids); do kill -9 "$p" 2>/dev/null || true; done
for cg in $(kubepods_cgroups); do
  find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do kill -9 "$p" 2>/dev/null || true; done
done

# Mounts: pod volumes, container rootfs and shm, network namespace pins.
for _ in 1 2 3; do
  ms=$(our_mounts)
  [ -z "$ms" ] && break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$ms"
done
rm -f /run/netns/cni-* 2>/dev/null || true
rmdir /run/netns 2>/dev/null || true

# cgroups the kubelet made: remove the trees bottom-up (they are empty now).
for cg in $(kubepods_cgroups); do
  for _ in $(seq 20); do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$cg" ] || break
    sleep 0.1
  done
done

ip link del "$BRIDGE" 2>/dev/null || true
# containerd 1.6 puts shim sockets in /run/containerd/s whatever its config says; remove the
# directories only when empty (a system containerd may use them).
rmdir /run/containerd/s /run/containerd 2>/dev/null || true
# The kubelet links container logs into /var/log/containers; drop the links into our state.
if [ -d /var/log/containers ]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  rmdir /var/log/containers 2>/dev/null || true
fi
# The kubelet's device manager socket path is fixed, whatever --root-dir says.
rm -f /var/lib/kubelet/device-plugins/kubelet.sock
rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
# IP allocations of pods that no longer exist.
rm -rf "$STATE/cni/ipam"
rm -rf "$RUN"
rm -f "$KUBECONFIG_OUT"

if [ "${WIPE:-0}" = 1 ]; then
  our=$(our_mounts)
  [ -z "$our" ] || die "not wiping: still mounted: $our"
  rm -rf "$STATE" "$ETCD_DATA"
  log "state wiped ($STATE, $ETCD_DATA)"
fi

fwd=$(ip_forward)
if [ "$fwd" != "$fwd_start" ]; then
  die "NETWORK RULE BROKEN: net.ipv4.ip_forward was $fwd_start when the cluster started and is $fwd now. Set it back (sysctl -w net.ipv4.ip_forward=$fwd_start) and find out what changed it."
fi
log "cluster stopped in $(since "$T")s"
"$HACK/check-clean.sh"
