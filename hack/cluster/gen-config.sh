#!/usr/bin/env bash
# Writes the cluster's configuration under $STATE: containerd.toml, the CNI conflist, kubeconfigs,
# kubelet.yaml (rewritten every time, cheap and deterministic) and the PKI (made once, kept).
. "$(dirname "$0")/lib.sh"
mkdir -p "$ETC" "$PKI" "$STATE/cni/net.d" "$LOGS" "$RUN"

# ---- gVisor: the "gvisor" runtime handler (RuntimeClass gvisor), unless GVISOR=0 ----
# containerd starts containerd-shim-runsc-v1 from its PATH (up.sh puts $GVISOR_BIN first); the shim
# reads runsc.toml through the options' TypeUrl. Platform systrap: this VM has no /dev/kvm.
gvisor_stanza() {
  [ "$GVISOR" = 1 ] || return 0
  cat <<TOML
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gvisor]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gvisor.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "$ETC/runsc.toml"
TOML
}
cat > "$ETC/runsc.toml" <<TOML
binary_name = "$GVISOR_BIN/runsc"
root = "$RUNSC_ROOT"
[runsc_config]
  platform = "systrap"
TOML

# ---- containerd 1.6, config version 2 ----
# Everything lives under STATE and RUN. Two paths are fixed by containerd 1.6 itself:
# /run/containerd/s (shim sockets) and /run/netns (pod network namespaces); down.sh removes them.
cat > "$ETC/containerd.toml" <<TOML
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "podsandbox.local/pause:1"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  disable_apparmor = true
  # Where root lacks CAP_SYS_RESOURCE (this VM), the negative oom_score_adj the CRI gives the pause
  # container fails in runc ("can't get final child's PID from pipe: EOF"); clamp it instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
$(gvisor_stanza)
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML

# ---- CNI: one bridge, host-local IPAM ----
# NETWORK RULE: pods must never be able to send traffic off this machine.
#  - isGateway false: with true the bridge plugin turns net.ipv4.ip_forward on for the host;
#  - ipMasq false: no masquerade;
#  - no "routes" in IPAM: pods get only the connected $POD_CIDR route, no default route.
# up.sh creates the bridge with the .1 address itself; pods reach the host and each other only.
cat > "$STATE/cni/net.d/10-podsandbox.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "podsandbox",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "dataDir": "$STATE/cni/ipam"}}
  ]
}
JSON

# ---- PKI (openssl; RSA 2048, 10 years), once ----
if [ ! -f "$PKI/kubelet.crt" ]; then
  log "generating PKI in $PKI"
  ( cd "$PKI"
    rm -f ./*.crt ./*.key ./*.pub ./*.srl
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=podsandbox-cluster-ca" 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    mk() { # name CN O SANs
      local n=$1 cn=$2 o=$3 san=$4 ext
      ext="basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth"
      [ -n "$san" ] && ext="$ext\nsubjectAltName=$san"
      openssl req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" -subj "/CN=$cn${o:+/O=$o}" 2>/dev/null
      # shellcheck disable=SC2059
      openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$n.crt" \
        -extfile <(printf "$ext") 2>/dev/null
      rm -f "$n.csr"
    }
    mk apiserver kube-apiserver "" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:${SVC_CIDR%.*}.1"
    mk apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
    mk admin kubernetes-admin system:masters ""
    mk controller-manager system:kube-controller-manager "" ""
    mk scheduler system:kube-scheduler "" ""
    mk kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1"
    chmod 600 ./*.key
  )
fi

# kcfg FILE USER CERT [embed]: a kubeconfig for https://127.0.0.1:$API_PORT. With "embed" the
# certificates are inlined, so that the file works on its own (the one written into checkouts).
kcfg() {
  local f=$1 user=$2 cert=$3 ca crt key
  if [ "${4:-}" = embed ]; then
    ca="certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")"
    crt="client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")"
    key="client-key-data: $(base64 -w0 < "$PKI/$cert.key")"
  else
    ca="certificate-authority: $PKI/ca.crt"
    crt="client-certificate: $PKI/$cert.crt"
    key="client-key: $PKI/$cert.key"
  fi
  (umask 077; cat > "$f.tmp" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: podsandbox
  cluster:
    server: https://127.0.0.1:$API_PORT
    $ca
users:
- name: $user
  user:
    $crt
    $key
contexts:
- name: $user@podsandbox
  context: {cluster: podsandbox, user: $user, namespace: default}
current-context: $user@podsandbox
YAML
  )
  mv "$f.tmp" "$f"
}
kcfg "$ETC/admin.kubeconfig" admin admin
kcfg "$ETC/admin-embedded.kubeconfig" admin admin embed
kcfg "$ETC/controller-manager.kubeconfig" controller-manager controller-manager
kcfg "$ETC/scheduler.kubeconfig" scheduler scheduler
kcfg "$ETC/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet

# ---- kubelet ----
cat > "$ETC/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# loopback only: the apiserver reaches the kubelet as "localhost" (Hostname address type)
address: 127.0.0.1
port: 10250
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
# v1.35+ refuses cgroup v1 hosts unless told otherwise
failCgroupV1: false
containerRuntimeEndpoint: unix://$SOCK
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
podCIDR: $POD_CIDR
# the scale e2e test runs 200 sandbox pods at once (the /24 pod CIDR has 253 addresses)
maxPods: 250
resolvConf: ""
enforceNodeAllocatable: []
cgroupsPerQOS: true
# side-loaded images must never be garbage-collected; small disks must not evict pods
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"}
serializeImagePulls: false
registerNode: true
makeIPTablesUtilChains: false
volumePluginDir: $STATE/kubelet-plugins
podLogsDir: $STATE/pod-logs
localStorageCapacityIsolation: true
YAML
