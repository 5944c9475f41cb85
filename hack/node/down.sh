#!/usr/bin/env bash
# Stops the local node (hack/node/up.sh) and removes its runtime state: every
# container, mount, network namespace and iptables rule it made. Images and
# provisioned volumes stay under $MATHTUNE_CACHE/node (a warm start reuses
# the images; `make clean-node` removes them too).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_daemon() {
  local pidfile="$NODE_STATE/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

# The kubelet first, so it does not restart what is stopped below.
for d in local-path-provisioner ascend-device-plugin kube-proxy kubelet; do stop_daemon "$d"; done
if [[ -S "$NODE_STATE/containerd.sock" ]]; then
  for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill --all --signal SIGKILL "$task" >/dev/null 2>&1; done
  sleep 1
  for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$task" >/dev/null 2>&1; done
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop_daemon containerd
pkill -9 -f -- "containerd-shim-runc-v2 .*$NODE_STATE" 2>/dev/null
[[ -x "$KUBE_PROXY" ]] && "$KUBE_PROXY" --cleanup >/dev/null 2>&1
# Mounts left by pods (volumes, rootfs, sandboxes' /dev/shm): deepest first.
for root in "$KUBELET_ROOT" "$NODE_STATE" "$CONTAINERD_ROOT"; do
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
done
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null; done
ip link delete mathtune-br0 2>/dev/null
ip link delete "$NODE_LINK" 2>/dev/null
cluster_healthy && kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1
rm -rf "$NODE_STATE" "$KUBELET_ROOT"
log "node $NODE_NAME stopped"
exit 0
