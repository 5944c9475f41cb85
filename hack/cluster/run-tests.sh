#!/usr/bin/env bash
# `make test`: the whole suite as two pytest sessions side by side, because
# the machine is mostly idle in one while the other waits:
# - "cluster": every test marked integration (the local cluster, started by
#   its session fixture if none is running and stopped afterwards). Most of
#   it is the operator against kwok's nodes: seconds of waiting on watches.
# - "local": every other test; most of its time is real MindSpore on CPU.
# Both run to the end; the cluster session's output streams, the local one's
# follows it. Extra arguments go to both.
# Exits non-zero on any failure or error, and when either session ran no
# test (pytest's 5).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${VENV:-.venv}/bin/python"
tmp="${TMPDIR:-/tmp}/mathtune-tests.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# --durations: which tests cost what, in every CI log. Separate base
# temporary directories: each session clears its own at start. Each session
# writes how many tests it left out for want of the real fixtures; one banner
# below says the sum.
MATHTUNE_FIXTURES_REPORT="$tmp/local.absent" \
  "$PY" -m pytest tests -m "not integration" -ra --durations=15 --basetemp="$tmp/local" "$@" \
  > "$tmp/local.log" 2>&1 &
local_pid=$!
# The chaos-marked test stops the real node's kubelet under a real CPU run:
# `make chaos` runs it, with the rest of the chaos.
MATHTUNE_FIXTURES_REPORT="$tmp/cluster.absent" \
  "$PY" -m pytest tests -m "integration and not chaos" -ra --durations=15 --basetemp="$tmp/cluster" "$@"
cluster_code=$?
wait "$local_pid"
local_code=$?
echo
echo "=============================== the local session (no cluster) ==============================="
cat "$tmp/local.log"

absent=$(( $(cat "$tmp/local.absent" 2>/dev/null || echo 0) + $(cat "$tmp/cluster.absent" 2>/dev/null || echo 0) ))
"$PY" -m hack.fixtures.store banner "$absent"

status=0
for pair in "cluster:$cluster_code" "local:$local_code"; do
  name="${pair%%:*}" code="${pair##*:}"
  if [[ $code -eq 5 ]]; then
    echo "the $name session ran no test: that is a failure" >&2
    status=1
  elif [[ $code -ne 0 ]]; then
    echo "the $name session failed (pytest exit $code)" >&2
    status=1
  fi
done
exit $status
