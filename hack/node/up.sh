#!/usr/bin/env bash
# Joins a real node to the local control plane (hack/cluster/up.sh first):
#
#   containerd + runc       run the pods' containers (Debian's packages)
#   CNI bridge              pod network 10.244.0.0/24 on bridge mathtune-br0
#   kubelet                 registers node `mathtune-node`, enforces
#                           securityContext, probes, volumes, termination messages
#   kube-proxy              Services (in-cluster clients dial the `kubernetes` Service)
#   ascend-device-plugin    8 emulated huawei.com/Ascend910 devices through the
#                           kubelet's device-plugin API (hack/ascend-device-plugin)
#   local-path-provisioner  dynamic claims (StorageClass mathtune-local, default)
#
# Every image was built by hack/images/build.sh and is imported here: nothing
# is pulled. Idempotent: what already runs is left alone. Needs root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $EUID -eq 0 ]] || { log "the node needs root (containerd, runc, network namespaces)"; exit 1; }
for cmd in containerd runc ctr ip iptables; do
  command -v "$cmd" >/dev/null || { log "$cmd missing: run 'make node-deps'"; exit 1; }
done
for b in "$KUBELET" "$KUBE_PROXY" "$DEVICE_PLUGIN" "$LOCAL_PATH"; do
  [[ -x "$b" ]] || { log "missing $b: run 'make binaries'"; exit 1; }
done
cluster_healthy || { log "the control plane is not running: run 'make cluster' first"; exit 1; }
eval "$(bash "$repo/hack/images/build.sh" refs)"
for a in "$PAUSE_ARCHIVE" "$PYTHON_BASE_ARCHIVE"; do
  [[ -f "$a" ]] || { log "missing image $a: run 'make images'"; exit 1; }
done

# A node joined to an earlier incarnation of the control plane (recreated
# since, with new certificates) is stopped first: its kubelet and proxies hold
# the old credentials.
joined_to="$(sha256sum "$CLUSTER_DIR/pki/ca.crt" | cut -c1-64)"
if [[ -f "$NODE_STATE/joined-to" && "$(cat "$NODE_STATE/joined-to")" != "$joined_to" ]]; then
  log "the control plane was recreated since the node joined it: restarting the node"
  bash "$here/down.sh"
fi

mkdir -p "$NODE_STATE" "$NODE_LOGS" "$CONTAINERD_ROOT" "$DEVICE_PLUGIN_SOCKETS" "$CNI_CONF_DIR" "$HEALTH_DIR"

# render <template> <output>: @VARS@ of the node's templates filled in.
render() {
  sed -e "s#@ROOT@#$CONTAINERD_ROOT#g" -e "s#@STATE@#$NODE_STATE#g" -e "s#@PAUSE_IMAGE@#$PAUSE_IMAGE#g" \
      -e "s#@CNI_CONF_DIR@#$CNI_CONF_DIR#g" -e "s#@POD_CIDR@#$POD_CIDR#g" -e "s#@NODE_IP@#$NODE_IP#g" \
      -e "s#@NODE_NAME@#$NODE_NAME#g" -e "s#@KUBECONFIG@#$KUBECONFIG_FILE#g" \
      -e "s#@KUBELET_PORT@#$KUBELET_PORT#g" -e "s#@HEALTHZ_PORT@#$KUBELET_HEALTHZ_PORT#g" \
      -e "s#@PROXY_HEALTHZ_PORT@#$PROXY_HEALTHZ_PORT#g" -e "s#@PROXY_METRICS_PORT@#$PROXY_METRICS_PORT#g" \
      "$here/$1" >"$2.new"
  # Unchanged files stay untouched: kube-proxy exits when its config file is
  # rewritten, even with the same content.
  if cmp -s "$2.new" "$2"; then rm -f "$2.new"; else mv "$2.new" "$2"; fi
}

# A stable, non-loopback address for the node (the kubelet refuses 127.0.0.1),
# the same on every machine, on an interface of its own.
if ! ip -4 addr show dev "$NODE_LINK" 2>/dev/null | grep -q " $NODE_IP/"; then
  # A bridge with no ports: this machine has no dummy interface driver.
  ip link add "$NODE_LINK" type bridge 2>/dev/null || true
  ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
fi
# Pods reach Services and the API server through the host.
sysctl -qw net.ipv4.ip_forward=1 || log "could not enable ip_forward (pods may not reach Services)"

render containerd.toml "$NODE_STATE/containerd.toml"
render cni.conflist "$CNI_CONF_DIR/10-mathtune.conflist"
render kubelet.yaml "$NODE_STATE/kubelet.yaml"
render kube-proxy.yaml "$NODE_STATE/kube-proxy.yaml"

start_daemon containerd containerd --config "$NODE_STATE/containerd.toml"
wait_for containerd 60 ctr_ version

# Import each image containerd does not have yet (the images' tags are digests
# of their inputs, so a present tag is the right content), then give the
# operator and pipeline images the names a user pushes them under
# (mathtune/<image>:<chart appVersion>): the chart's default values and the
# examples' `images.pipeline` then name exactly what this checkout built.
release="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/charts/mathtune-operator/Chart.yaml")"
for entry in "$PAUSE_IMAGE=$PAUSE_ARCHIVE=" "$PYTHON_BASE_IMAGE=$PYTHON_BASE_ARCHIVE=" \
             "$OPERATOR_IMAGE=$OPERATOR_ARCHIVE=docker.io/mathtune/operator:$release" \
             "$PIPELINE_CPU_IMAGE=$PIPELINE_CPU_ARCHIVE=docker.io/mathtune/pipeline-cpu:$release" \
             "$PIPELINE_ASCEND_NOCANN_IMAGE=$PIPELINE_ASCEND_NOCANN_ARCHIVE="; do
  IFS='=' read -r ref archive alias <<<"$entry"
  if ! ctr_ images ls -q | grep -qx "$ref"; then
    if [[ ! -f "$archive" ]]; then log "image $ref not built (make images): pods using it will not start"; continue; fi
    step "importing $ref" ctr_ images import "$archive"
  fi
  # Pinned: the kubelet's image garbage collector never removes them (they
  # cannot be pulled back).
  ctr_ images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
  if [[ -n "$alias" ]]; then
    ctr_ images tag --force "$ref" "$alias" >/dev/null
    ctr_ images label "$alias" io.cri-containerd.pinned=pinned >/dev/null
  fi
done

# Earlier builds of the project's images go: each pipeline build is GiBs.
current="$(printf '%s\n' "$PAUSE_IMAGE" "$PYTHON_BASE_IMAGE" "$OPERATOR_IMAGE" "$PIPELINE_CPU_IMAGE" \
  "$PIPELINE_ASCEND_NOCANN_IMAGE")"
for stale in $(ctr_ images ls -q | grep '^localhost/mathtune/' | grep -vxF "$current"); do
  ctr_ images rm "$stale" >/dev/null
done
# The CRI plugin also names every image it has seen by its ID (sha256:...).
# Such a name outlives the image's tags and keeps its content and unpacked
# snapshots (GiBs per pipeline build) alive: drop the ones no tag shares,
# then collect what they held (--sync).
listing="$(ctr_ images ls | awk 'NR > 1 {print $1, $3}')"
named_targets="$(awk '$1 !~ /^sha256:/ {print $2}' <<<"$listing" | sort -u)"
orphans="$(awk '$1 ~ /^sha256:/ {print $1, $2}' <<<"$listing" |
  while read -r id target; do grep -qxF "$target" <<<"$named_targets" || echo "$id"; done)"
if [[ -n "$orphans" ]]; then
  # shellcheck disable=SC2086
  ctr_ images rm --sync $orphans >/dev/null
  log "removed $(wc -w <<<"$orphans") images only their IDs still named"
fi

echo "$joined_to" >"$NODE_STATE/joined-to"
start_daemon kubelet "$KUBELET" --config "$NODE_STATE/kubelet.yaml" --kubeconfig "$KUBECONFIG_FILE" \
  --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "$NODE_LABELS" --v 1
node_ready() { [[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; }
wait_for "node $NODE_NAME Ready" 120 node_ready

start_daemon kube-proxy "$KUBE_PROXY" --config "$NODE_STATE/kube-proxy.yaml" --v 1
# With the node's credentials it publishes what Huawei's plugin does through
# the API server: kube-system/mindx-dl-deviceinfo-<node> and each pod's
# huawei.com/AscendReal (hack/ascend-device-plugin/cluster.go).
kube_field() { kc config view --minify -o jsonpath="{$1}"; }
start_daemon ascend-device-plugin "$DEVICE_PLUGIN" --socket-dir "$DEVICE_PLUGIN_SOCKETS" \
  --devices "$NODE_NPUS" --health-dir "$HEALTH_DIR" --node-name "$NODE_NAME" \
  --kube-server "$(kube_field .clusters[0].cluster.server)" \
  --kube-ca "$(kube_field .clusters[0].cluster.certificate-authority)" \
  --kube-cert "$(kube_field .users[0].user.client-certificate)" \
  --kube-key "$(kube_field .users[0].user.client-key)" \
  --pod-resources-socket "$KUBELET_ROOT/pod-resources/kubelet.sock"
npus_ready() { [[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.allocatable.huawei\.com/Ascend910}' 2>/dev/null)" == "$NODE_NPUS" ]]; }
wait_for "$NODE_NPUS huawei.com/Ascend910 allocatable on $NODE_NAME" 60 npus_ready

# Dynamic provisioning as kind does it: rancher's local-path-provisioner, its
# helper pods in the base image (it only needs sh, mkdir and rm).
kc apply -f - >/dev/null <<YAML
$(sed -e "s#@BASE_IMAGE@#$PYTHON_BASE_IMAGE#g" -e "s#@DATA_DIR@#$VOLUMES_DIR#g" "$here/local-path.yaml")
YAML
start_daemon local-path-provisioner "$LOCAL_PATH" --debug start --kubeconfig "$KUBECONFIG_FILE" --namespace "$LOCAL_PATH_NS" \
  --configmap-name local-path-config --service-account-name local-path-provisioner \
  --provisioner-name mathtune.dev/local-path --helper-image "$PYTHON_BASE_IMAGE"

kc get node "$NODE_NAME" -o wide >&2
log "node $NODE_NAME ready: $NODE_NPUS emulated NPUs, pods on $POD_CIDR, logs in $NODE_LOGS"
