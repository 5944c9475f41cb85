# Shared settings for the local control plane scripts (sourced, not run).
# shellcheck shell=bash
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CACHE="${MATHTUNE_CACHE:-$HOME/.cache/mathtune}"
CLUSTER_NAME="${MATHTUNE_CLUSTER_NAME:-mathtune}"
# kwokctl keeps each cluster's state (pids, certs, etcd data, logs) here.
export KWOK_WORKDIR="$CACHE/kwok"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
KUBECONFIG_FILE="$CACHE/kubeconfig-$CLUSTER_NAME.yaml"
KUBE_BIN="$CACHE/bin/kubernetes-$KUBE_VERSION"
ETCD_BIN="$CACHE/bin/etcd-$ETCD_VERSION"
KWOK_BIN="$CACHE/bin/kwok-$KWOK_VERSION"
HELM_BIN="$CACHE/bin/helm-$HELM_VERSION"
KUBECTL="$KUBE_BIN/kubectl"
KWOKCTL="$KWOK_BIN/kwokctl"
log() { printf '[cluster] %s\n' "$*" >&2; }
STEP_PREFIX="[cluster]"
STEP_LOG="${STEP_LOG:-$CACHE/logs/cluster.log}"
# shellcheck source=../lib/step.sh
source "$here/../lib/step.sh"
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
cluster_healthy() {
  [[ -f "$KUBECONFIG_FILE" ]] && kc get --raw /readyz >/dev/null 2>&1
}
