#!/usr/bin/env bash
# `make demo`: bring up the local control plane and show the simulated Ascend
# servers. (It grows into the full CPU run as the operator lands.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$here/up.sh"
echo
echo "Nodes of the local cluster (NPUs allocatable per node):"
kc get nodes -L accelerator \
  -o custom-columns='NAME:.metadata.name,ACCELERATOR:.metadata.labels.accelerator,NPUS:.status.allocatable.huawei\.com/Ascend910,CPU:.status.allocatable.cpu,STATUS:.status.conditions[?(@.type=="Ready")].type'
echo
echo "Use it:   eval \"\$(make -s kubeconfig)\" && kubectl get nodes"
echo "Stop it:  make cluster-down"
