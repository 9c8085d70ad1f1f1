# Shared settings and helpers of the hack/cluster scripts. Sourced, never run.
# Paths (all overridable through the environment):
#   ROOT        the checkout (the directory above hack/)
#   CACHE       binaries, image tarballs and root file systems, keyed by version, shared by every
#               checkout on the machine
#   STATE       the cluster's own state: PKI, config, containerd root, kubelet root, logs
#   RUN         PID files and sockets of the running cluster
#   KUBECONFIG_OUT  the admin kubeconfig written into the checkout (ignored by git)
# STATE and RUN are outside the checkout on purpose: a cluster started from one checkout is reused
# by another (cluster-up there only writes its kubeconfig).
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${ROOT:-$(cd "$HACK/../.." && pwd)}
# shellcheck source=versions.env
. "$HACK/versions.env"
CACHE=${PODSANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podsandbox}
BIN=${BIN:-$CACHE/k8s-$K8S_VERSION/bin}
# GVISOR=1 (the default) gives the cluster a "gvisor" RuntimeClass; GVISOR=0 leaves it out.
GVISOR=${GVISOR:-1}
_gv() { local v=${1#v0.0.0-}; echo "${v%%-*}"; }
GVISOR_BIN=${GVISOR_BIN:-$CACHE/gvisor-runsc$(_gv "$GVISOR_RUNSC_VERSION")-shim$(_gv "$GVISOR_SHIM_VERSION")/bin}
# NETPOL=1 (the default) runs a NetworkPolicy enforcer (kube-router's firewall); NETPOL=0 does not.
NETPOL=${NETPOL:-1}
KUBE_ROUTER_BIN=${KUBE_ROUTER_BIN:-$CACHE/kube-router-$KUBE_ROUTER_VERSION/bin}
have_kube_router() { [ -x "$KUBE_ROUTER_BIN/kube-router" ] && "$KUBE_ROUTER_BIN/kube-router" --version >/dev/null 2>&1; }
have_runsc() { [ -x "$GVISOR_BIN/runsc" ] && "$GVISOR_BIN/runsc" --version >/dev/null 2>&1; }
have_shim() { [ -x "$GVISOR_BIN/containerd-shim-runsc-v1" ] && "$GVISOR_BIN/containerd-shim-runsc-v1" -v >/dev/null 2>&1; }
STATE=${STATE:-/var/lib/podsandbox-cluster}
RUN=${RUN:-/run/podsandbox-cluster}
# runsc keeps its container state here; it bind-mounts a netns pin under it (down.sh unmounts).
RUNSC_ROOT=$RUN/runsc
ETCD_DATA=${ETCD_DATA:-/dev/shm/podsandbox-etcd}
KUBECONFIG_OUT=${KUBECONFIG_OUT:-$ROOT/.cluster/kubeconfig}
NODE_NAME=${NODE_NAME:-localhost}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}
SVC_CIDR=${SVC_CIDR:-10.96.0.0/24}
BRIDGE=${BRIDGE:-psbx0}
API_PORT=${API_PORT:-6443}
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH
log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

PKI=$STATE/pki
ETC=$STATE/etc
LOGS=$STATE/log
SOCK=$RUN/containerd.sock
# Daemons in start order; each has $RUN/<name>.pid while it runs.
DAEMONS="containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet"
# Every TCP port the cluster listens on (all on 127.0.0.1): apiserver, etcd client/peer/metrics,
# kubelet API and healthz, controller-manager and scheduler secure ports.
PORTS="$API_PORT 2379 2380 2381 10250 10248 10257 10259"
# Debian packages the cluster and the image build need.
PACKAGES="containerd runc containernetworking-plugins iptables ipset conntrack openssl curl ca-certificates debootstrap busybox-static iproute2 util-linux"

require_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (it runs containerd, the kubelet and debootstrap); run it as root"; }

# pid_of NAME: prints the PID recorded for NAME when that process is alive and still runs NAME's
# binary (so a recycled PID is never taken for ours). Returns 1 otherwise.
pid_of() {
  local f=$RUN/$1.pid p exe
  [ -f "$f" ] || return 1
  p=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -d "/proc/$p" ] || return 1
  exe=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n1) || return 1
  [ "$(basename "$exe")" = "$1" ] || return 1
  echo "$p"
}

# api PATH: GET from the API server as the cluster admin, with no kubectl needed.
api() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT$1"
}

# api_write METHOD PATH BODY: a write to the API server as the cluster admin; prints the HTTP code.
api_write() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "https://127.0.0.1:$API_PORT$2"
}

# kubelet_ready: the kubelet's healthz answers and the node is Ready (healthz first: right after a
# restart the node object still says Ready from the previous run).
kubelet_ready() { curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null && node_ready; }
node_ready() { api "/api/v1/nodes/$NODE_NAME" 2>/dev/null | tr -d " \n" | grep -q '"type":"Ready","status":"True"'; }

# cluster_healthy: every daemon alive, the API server ready, the node Ready.
cluster_healthy() {
  local d
  for d in $DAEMONS; do pid_of "$d" >/dev/null || return 1; done
  api /readyz >/dev/null 2>&1 && node_ready
}

ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }

# port_holder PORT: prints "what holds it" when something listens on the TCP port.
port_holder() { ss -Hltnp "( sport = :$1 )" 2>/dev/null | awk '{print $4, $6}' | head -n1; }

ip_forward() { cat /proc/sys/net/ipv4/ip_forward; }

# Timing: lap LABEL prints the time since the script started.
T0=${EPOCHREALTIME/./}
since() { local now=${EPOCHREALTIME/./}; printf '%.1f' "$(( (now - $1) / 100000 ))e-1"; }
lap() { printf 'TIMING %-28s %6ss\n' "$1" "$(since "$T0")" >&2; }

# lock: serialise cluster-up and cluster-down across checkouts (a nested call sets CLUSTER_LOCKED).
lock() {
  [ -n "${CLUSTER_LOCKED:-}" ] && return 0
  exec 9>"$RUN.lock"
  flock -w 900 9 || die "another cluster-up/cluster-down is still running (lock $RUN.lock)"
  export CLUSTER_LOCKED=1
}

# start NAME CMD...: run a daemon in its own session, log in $LOGS/NAME.log, PID in $RUN/NAME.pid.
# (In a script without job control a background job is not a process group leader, so setsid
# execs in place and $! is the daemon's PID; pid_of checks that.)
start() {
  local n=$1; shift
  setsid "$@" >"$LOGS/$n.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$n.pid"
  # until the child has exec'ed the daemon, its command line is still bash's
  for _ in $(seq 50); do pid_of "$n" >/dev/null && return 0; sleep 0.02; done
  tail -n 25 "$LOGS/$n.log" >&2 || true
  die "$n did not start (log: $LOGS/$n.log)"
}

# waitfor DESC SECONDS DAEMON CMD...: poll CMD every 0.1 s; fail with DAEMON's log tail when it
# times out or DAEMON exits.
waitfor() {
  local d=$1 t=$2 n=$3 end; shift 3
  end=$(( ${EPOCHREALTIME/./} + t * 1000000 ))
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$n" >/dev/null; then
      tail -n 25 "$LOGS/$n.log" >&2 || true
      die "$n exited while waiting for $d (log: $LOGS/$n.log)"
    fi
    if [ "${EPOCHREALTIME/./}" -gt "$end" ]; then
      tail -n 25 "$LOGS/$n.log" >&2 || true
      die "timed out after ${t}s waiting for $d (log: $LOGS/$n.log)"
    fi
    sleep 0.1
  done
}

# shim_pids: containerd shims that serve our containerd (their -address is our socket).
shim_pids() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $SOCK " && echo "${p#/proc/}"
  done
  return 0
}

# gvisor_pids: processes running our runsc or its shim (by their executable).
gvisor_pids() {
  local p
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in "$GVISOR_BIN"/*) echo "${p#/proc/}" ;; esac
  done
  return 0
}

# kube-router's iptables chains (and the rules jumping to them) and its ipsets: KUBE-ROUTER-*,
# KUBE-NWPLCY-*, KUBE-POD-FW-* chains; KUBE-SRC-*, KUBE-DST-* sets; and up.sh's PSBX-CONNTRACK.
NETPOL_CHAINS='(KUBE-(ROUTER|NWPLCY|POD-FW)-|PSBX-CONNTRACK)'
NETPOL_SETS='^KUBE-(SRC|DST)-'

# netpol_left: prints kube-router's chains and sets still in the kernel; returns 1 when none.
netpol_left() {
  local out
  out=$( { iptables-save -t filter 2>/dev/null | grep -E "^:$NETPOL_CHAINS" | cut -d' ' -f1 | tr -d :
           ipset list -n 2>/dev/null | grep -E "$NETPOL_SETS" ; } | sort -u | tr '\n' ' ')
  [ -n "$out" ] && echo "$out"
}

# netpol_cleanup: removes them, other rules untouched. (kube-router --cleanup-config v2.1.0 leaves its
# top-level chains and then panics in its service proxy's cleanup.) The filter table is rewritten
# without kube-router's lines in one iptables-restore; the sets go once nothing refers to them.
netpol_cleanup() {
  local dump s
  dump=$(iptables-save -t filter) || return 1
  if grep -qE "$NETPOL_CHAINS" <<<"$dump"; then
    grep -vE "$NETPOL_CHAINS" <<<"$dump" | iptables-restore || return 1
  fi
  for s in $(ipset list -n 2>/dev/null | grep -E "$NETPOL_SETS"); do ipset destroy "$s" || return 1; done
}

# our_mounts: mount points that belong to the cluster (pod volumes, rootfs, shm, netns pins),
# deepest first.
our_mounts() {
  awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' |
    grep -E "^($STATE|$RUN|$ETCD_DATA)(/|$)|^/run/netns/cni-" | sort -r || true
}

# kubepods_cgroups: the kubelet's cgroup trees (cgroup v1 hierarchies and v2).
kubepods_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do [ -d "$d" ] && echo "$d"; done
  return 0
}
