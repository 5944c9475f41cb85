#!/usr/bin/env bash
# Installs what the real node and the image builds need, from Debian's
# packages, when missing: containerd, runc, the CNI plugins, iptables and
# conntrack (kube-proxy), buildah and mmdebstrap (hack/images/build.sh), and
# chromium (headless: the unit test that renders `kubectl mathtune
# sweep-report`'s page, tests/unit/operator/plugin/test_sweep_report.py).
set -euo pipefail
need=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
            iptables:iptables conntrack:conntrack buildah:buildah mmdebstrap:mmdebstrap chromium:chromium; do
  cmd="${pair%%:*}" pkg="${pair#*:}"
  if [[ "$cmd" == /* ]]; then [[ -e "$cmd" ]] || need+=("$pkg")
  else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
done
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
[[ $EUID -eq 0 ]] || { echo "[node] missing ${need[*]}: run 'make node-deps' as root" >&2; exit 1; }
echo "[node] installing ${need[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
