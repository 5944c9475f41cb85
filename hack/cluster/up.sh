#!/usr/bin/env bash
# Starts the local control plane: etcd, kube-apiserver (RBAC on),
# kube-controller-manager, kube-scheduler and the kwok controller, all as plain
# processes from the cached binaries (build-binaries.sh), then registers the
# simulated nodes of nodes.yaml. Idempotent: a healthy cluster is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for b in "$KUBE_BIN/kube-apiserver" "$ETCD_BIN/etcd" "$KWOK_BIN/kwok" "$KWOKCTL"; do
  [[ -x "$b" ]] || { log "missing $b: run 'make binaries' first"; exit 1; }
done

# A running cluster made from another kwok.yaml (say, before the Logs CRD was
# enabled) is made again, or tests would run against stale behaviour.
config_sum="$(sha256sum "$here/kwok.yaml" | cut -d' ' -f1)"
if cluster_healthy && [[ "$(cat "$CLUSTER_DIR/mathtune-kwok.sha256" 2>/dev/null)" != "$config_sum" ]]; then
  log "cluster '$CLUSTER_NAME' runs an older kwok.yaml: recreating it"
  "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE" >/dev/null 2>&1 || true
  rm -rf "$CLUSTER_DIR"
fi
if cluster_healthy; then
  log "cluster '$CLUSTER_NAME' already running"
else
  if [[ -d "$CLUSTER_DIR" ]]; then
    log "removing stale state of cluster '$CLUSTER_NAME'"
    "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
  fi
  # Every binary is named so kwokctl downloads nothing; its JSON log lines go to the log file.
  step "starting cluster '$CLUSTER_NAME' (Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)" \
    "$KWOKCTL" create cluster \
    --name "$CLUSTER_NAME" \
    --runtime binary \
    --kubeconfig "$KUBECONFIG_FILE" \
    --config "$here/kwok.yaml" \
    --kube-authorization=true \
    --kube-apiserver-binary "$KUBE_BIN/kube-apiserver" \
    --kube-controller-manager-binary "$KUBE_BIN/kube-controller-manager" \
    --kube-scheduler-binary "$KUBE_BIN/kube-scheduler" \
    --etcd-binary "$ETCD_BIN/etcd" \
    --kwok-controller-binary "$KWOK_BIN/kwok" \
    --wait 120s
  echo "$config_sum" >"$CLUSTER_DIR/mathtune-kwok.sha256"
fi

kc apply -f "$here/nodes.yaml" >/dev/null
nodes_ready() {
  local ready total
  ready="$(kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)"
  total="$(kc get nodes --no-headers | wc -l)"
  [[ "$ready" -ge 1 && "$ready" -eq "$total" ]]
}
for _ in $(seq 120); do nodes_ready && break; sleep 0.5; done
if ! nodes_ready; then
  kc get nodes >&2
  log "nodes did not become Ready: see $CLUSTER_DIR/logs/kwok-controller.log"
  exit 1
fi
# The default ServiceAccount is made asynchronously; pods in a new namespace
# are refused until it exists, so wait for it here once.
for _ in $(seq 60); do kc get serviceaccount default -n default >/dev/null 2>&1 && break; sleep 1; done
kc get nodes -L accelerator -o wide >&2
log "ready: export KUBECONFIG=$KUBECONFIG_FILE"
