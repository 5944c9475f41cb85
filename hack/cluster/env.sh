#!/usr/bin/env bash
# Prints the lines that point kubectl and helm at the local cluster:
#   eval "$(make -s kubeconfig)"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "export KUBECONFIG=$KUBECONFIG_FILE"
echo "export PATH=$KUBE_BIN:$HELM_BIN:$KWOK_BIN:\$PATH"
