#!/usr/bin/env bash
# `make chaos`: two pytest sessions at once on one local cluster.
# - tests/e2e/test_chaos_node.py: the CPU example on the real node through a
#   full work volume and a stopped kubelet (its table: out/chaos-node.txt);
# - tests/integration/operator/test_chaos.py: 20 runs played on kwok while
#   operators, the API server and etcd are killed (out/chaos.txt), started
#   once the real run is applied, so that the API server and etcd restarts
#   land on the real run's stages too, not on its setup.
# The cluster is started first (if it is not running) so that both sessions
# reuse it and neither stops it. Exits non-zero when either session fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${VENV:-.venv}/bin/python"
mkdir -p out
bash hack/cluster/up.sh && bash hack/node/up.sh || exit 1

started="out/chaos-node.started"
rm -f "$started"
MATHTUNE_CHAOS_NODE_STARTED="$started" \
  "$PY" -m pytest -m integration -s tests/e2e/test_chaos_node.py > out/chaos-node.log 2>&1 &
node_pid=$!
echo "chaos: the real run's session started (log out/chaos-node.log); the played runs start when it is applied"
for _ in $(seq 1 1200); do
  [[ -f "$started" ]] && break
  kill -0 "$node_pid" 2>/dev/null || break
  sleep 1
done
"$PY" -m pytest -m integration -s tests/integration/operator/test_chaos.py
played=$?
wait "$node_pid"
node=$?
echo
echo "=============================== the real node's session ==============================="
cat out/chaos-node.log
status=0
[[ $played -eq 0 ]] || { echo "chaos: the played runs' session failed (pytest exit $played)" >&2; status=1; }
[[ $node -eq 0 ]] || { echo "chaos: the real node's session failed (pytest exit $node)" >&2; status=1; }
exit $status
