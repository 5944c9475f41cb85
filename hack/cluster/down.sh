#!/usr/bin/env bash
# Stops every process `up.sh` started and removes the cluster's state. The
# binary cache is kept (that is what makes the next `make cluster` fast).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ -x "$KWOKCTL" && -d "$CLUSTER_DIR" ]]; then
  "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE" >&2 || true
fi
# Belt and braces: anything still running from this cluster's directory.
if [[ -d "$CLUSTER_DIR" ]]; then
  pkill -f -- "$CLUSTER_DIR" 2>/dev/null || true
  sleep 1
  pkill -9 -f -- "$CLUSTER_DIR" 2>/dev/null || true
fi
rm -rf "$CLUSTER_DIR" "$KUBECONFIG_FILE"
log "cluster '$CLUSTER_NAME' stopped"
