# Shared settings of the hack/cluster scripts. Sourced, never run.
# Paths (all overridable through the environment):
#   ROOT        the checkout (the directory above hack/)
#   CACHE       binaries and image tarballs, keyed by version, shared by every checkout on the machine
#   STATE       the cluster's own state: PKI, config, containerd root, kubelet root, logs
#   RUN         PID files and sockets of the running cluster
#   KUBECONFIG_OUT  the admin kubeconfig written into the checkout (ignored by git)
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${ROOT:-$(cd "$HACK/../.." && pwd)}
# shellcheck source=versions.env
. "$HACK/versions.env"
CACHE=${PODSANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podsandbox}
BIN=${BIN:-$CACHE/k8s-$K8S_VERSION/bin}
STATE=${STATE:-/var/lib/podsandbox-cluster}
RUN=${RUN:-/run/podsandbox-cluster}
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
