#!/usr/bin/env bash
# Runs the real mathtune-pipeline with the CANN toolkit's environment (library
# paths, ASCEND_* variables) loaded, whatever command line the pod was given.
set -euo pipefail
# MATHTUNE_CANN_SET_ENV names other places to look (space-separated), e.g. a
# toolkit installed elsewhere; the default is where CANN's installer puts it.
for env in ${MATHTUNE_CANN_SET_ENV:-/usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/cann/set_env.sh}; do
  if [[ -f $env ]]; then
    # set_env.sh reads unset variables; relax -u while sourcing it.
    set +u; source "$env"; set -u
    break
  fi
done
exec "${MATHTUNE_REAL_PIPELINE:-/opt/mathtune/bin/mathtune-pipeline}" "$@"
