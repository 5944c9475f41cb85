#!/usr/bin/env bash
# `make demo`: bring up the local cluster (control plane, simulated nodes, the
# real node), install the operator's chart (the operator runs in its image on
# the real node), apply examples/run-cpu.yaml (every stage runs in the
# pipeline-cpu image there) and print `kubectl get mft` until the run ends.
# Details: hack/cluster/demo.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
repo="$(cd "$here/../.." && pwd)"
start=$(date +%s)
bash "$here/up.sh"
bash "$here/../node/up.sh"
echo
echo "Nodes of the local cluster (NPUs allocatable per node):"
kc get nodes -L accelerator \
  -o custom-columns='NAME:.metadata.name,ACCELERATOR:.metadata.labels.accelerator,NPUS:.status.allocatable.huawei\.com/Ascend910,CPU:.status.allocatable.cpu,STATUS:.status.conditions[?(@.type=="Ready")].type'
echo
cd "$repo"
code=0
"${VENV:-.venv}/bin/python" -m hack.cluster.demo "$@" || code=$?
echo
echo "demo finished in $(( $(date +%s) - start ))s (exit $code)"
echo "Use the cluster:  eval \"\$(make -s kubeconfig)\" && kubectl get mft -A"
echo "Stop it:          make cluster-down"
exit $code
