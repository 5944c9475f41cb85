#!/usr/bin/env bash
# `make test`: the whole suite in one pytest session. The session fixture
# starts the local control plane if none is running and stops it afterwards.
# Exits non-zero on any failure or error, and when no test ran (pytest's 5).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${VENV:-.venv}/bin/python"
"$PY" -m pytest tests -ra "$@"
code=$?
if [[ $code -eq 5 ]]; then
  echo "no test ran: that is a failure" >&2
  exit 1
fi
exit $code
