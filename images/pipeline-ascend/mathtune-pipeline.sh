#!/usr/bin/env bash
# Runs the real mathtune-pipeline with the CANN toolkit's environment (library
# paths, ASCEND_* variables) loaded, whatever command line the pod was given.
set -euo pipefail
for env in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/cann/set_env.sh; do
  if [[ -f $env ]]; then
    # set_env.sh reads unset variables; relax -u while sourcing it.
    set +u; source "$env"; set -u
    break
  fi
done
exec "${MATHTUNE_REAL_PIPELINE:-/opt/mathtune/bin/mathtune-pipeline}" "$@"
