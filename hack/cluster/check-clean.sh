#!/usr/bin/env bash
# Fails (exit 1, listing them) when the local cluster left anything behind: a process (daemon,
# kwok, shim, pod process), a mount, the bridge, a pod network namespace, a kubepods cgroup, a
# listener on the cluster's ports, $RUN (with runsc's state and mounts), or (WIPE=1) the state. Also fails when
# net.ipv4.ip_forward is not 0.
# Run by cluster-down; can be run on its own at any time the cluster should be down.
. "$(dirname "$0")/lib.sh"
left=()

for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] && continue
  cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
  [ -n "$cmd" ] || continue
  exe=$(readlink "$p/exe" 2>/dev/null || true)
  case "$exe" in "$BIN"/*|"$GVISOR_BIN"/*|"$KUBE_ROUTER_BIN"/*) left+=("process $pid: $cmd"); continue ;; esac
  case "$exe" in "$CACHE"/kwok-*/bin/*) left+=("kwok process $pid (make kwok-down stops it): $cmd"); continue ;; esac
  case "$cmd" in
    *"$ETC/containerd.toml"*|*"-address $SOCK "*) left+=("process $pid: $cmd") ;;
  esac
done
for cg in $(kubepods_cgroups); do
  procs=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | tr '\n' ' ')
  [ -z "${procs// /}" ] || left+=("processes in $cg: $procs")
  left+=("cgroup $cg")
done
while read -r m; do [ -n "$m" ] && left+=("mount $m"); done <<<"$(our_mounts)"
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
for n in /run/netns/cni-*; do [ -e "$n" ] && left+=("network namespace $n"); done
# a pod's host-side veth outlives the bridge only when its network namespace does: it then has no
# master (veths of other software, e.g. Docker's, hang on their own bridge)
veths=$(ip -o link show type veth 2>/dev/null | grep -v ' master ' | awk -F': ' '{split($2, a, "@"); print a[1]}' || true)
[ -z "$veths" ] || left+=("veth interfaces without a bridge: $(echo $veths)")
for port in $PORTS; do
  h=$(port_holder "$port")
  [ -z "$h" ] || left+=("listener on port $port: $h")
done
[ -e "$RUN" ] && left+=("run directory $RUN")
nl=$(netpol_left) && left+=("kube-router's iptables chains or ipsets: $nl")
[ -e /var/lib/kubelet/device-plugins/kubelet.sock ] && left+=("kubelet socket /var/lib/kubelet/device-plugins/kubelet.sock")
[ -z "$(ip -4 route show "$POD_CIDR" 2>/dev/null)" ] || left+=("route to $POD_CIDR")
if [ "${WIPE:-0}" = 1 ]; then
  [ -e "$STATE" ] && left+=("state $STATE (WIPE=1)")
  [ -e "$ETCD_DATA" ] && left+=("etcd data $ETCD_DATA (WIPE=1)")
fi
fwd=$(ip_forward)
[ "$fwd" = 0 ] || left+=("net.ipv4.ip_forward is $fwd (must be 0)")

if [ ${#left[@]} -gt 0 ]; then
  printf 'cluster: NOT CLEAN, left behind:\n' >&2
  printf '  - %s\n' "${left[@]}" >&2
  exit 1
fi
log "clean: no process, mount, bridge, netns, kubepods cgroup or listener of the cluster is left$([ "${WIPE:-0}" = 1 ] && echo ", state wiped")"
