# Shared settings of the local node scripts (sourced, not run).
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/common.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[node] %s\n' "$*" >&2; }
STEP_PREFIX="[node]"
repo="$(cd "$here/../.." && pwd)"
NODE_NAME=mathtune-node
NODE_LINK=mathtune0
NODE_IP=10.250.0.1
POD_CIDR=10.244.0.0/24
NODE_NPUS=8
# Not 10250: a machine that runs a kubelet of its own keeps that port.
KUBELET_PORT=10350
KUBELET_HEALTHZ_PORT=10348
PROXY_HEALTHZ_PORT=10356
PROXY_METRICS_PORT=10349
NODE_LABELS="accelerator=huawei-Ascend910,node.kubernetes.io/npu.chip.name=910B,mathtune.dev/node=real"
# Images and volumes persist between runs (a warm start imports nothing);
# sockets, pids and network state do not.
NODE_DIR="$CACHE/node"
CONTAINERD_ROOT="$NODE_DIR/containerd"
VOLUMES_DIR="$NODE_DIR/volumes"
NODE_LOGS="$NODE_DIR/logs"
NODE_STATE=/run/mathtune-node
CNI_CONF_DIR="$NODE_STATE/cni"
HEALTH_DIR="$NODE_STATE/npu-health"
KUBELET_ROOT=/var/lib/mathtune-kubelet
# The kubelet serves device-plugin registration at this fixed path, whatever
# its --root-dir (pluginapi.DevicePluginPath).
DEVICE_PLUGIN_SOCKETS=/var/lib/kubelet/device-plugins
LOCAL_PATH_NS=local-path-storage
KUBELET="$KUBE_BIN/kubelet"
KUBE_PROXY="$KUBE_BIN/kube-proxy"
DEVICE_PLUGIN_BIN_DIR="$CACHE/bin/ascend-device-plugin-$(cd "$repo/hack/ascend-device-plugin" && cat go.mod go.sum *.go | sha256sum | cut -c1-12)"
DEVICE_PLUGIN="$DEVICE_PLUGIN_BIN_DIR/ascend-device-plugin"
LOCAL_PATH="$CACHE/bin/local-path-provisioner-$LOCAL_PATH_VERSION/local-path-provisioner"

ctr_() { ctr --address "$NODE_STATE/containerd.sock" --namespace k8s.io "$@"; }

# start_daemon <name> <command...>: run it in its own session unless its pid
# file names a live process; output goes to $NODE_LOGS/<name>.log.
start_daemon() {
  local name="$1"; shift
  local pidfile="$NODE_STATE/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return; fi
  log "starting $name"
  setsid "$@" >>"$NODE_LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# wait_for <what> <seconds> <command...>: poll until the command succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local i
  for (( i = 0; i < seconds * 2; i++ )); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "timed out after ${seconds}s waiting for $what; logs: $NODE_LOGS"
  return 1
}
