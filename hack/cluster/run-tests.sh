#!/usr/bin/env bash
# `make test`: the whole suite in one pytest session. The session fixture
# starts the local cluster (control plane and real node) if none is running
# and stops it afterwards.
# Exits non-zero on any failure or error, and when no test ran (pytest's 5).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${VENV:-.venv}/bin/python"
# --durations: which tests cost what, in every CI log.
"$PY" -m pytest tests -ra --durations=25 "$@"
code=$?
if [[ $code -eq 5 ]]; then
  echo "no test ran: that is a failure" >&2
  exit 1
fi
exit $code
