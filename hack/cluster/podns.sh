#!/usr/bin/env bash
# Gives one container of a simulated pod the filesystem its spec describes,
# then runs its command. The local pod runner (podrunner.py) starts this
# under `unshare --mount --propagation private`, so every mount below lives
# only in that private mount namespace and vanishes with the process.
#
#   podns.sh <mount table> <private dev dir> <working dir> -- <command...>
#
# Mount table: one line per volume mount, tab-separated
#   <local source> <path in the pod> <rw|ro>
# /dev becomes a small tmpfs with the usual device nodes (as in a container),
# so a termination-message file can sit at /dev/termination-log without
# touching the host's /dev.
set -euo pipefail
table=$1 newdev=$2 workdir=$3
shift 3
[[ ${1:-} == -- ]] && shift

mkdir -p "$newdev"
mount -t tmpfs -o mode=0755,nosuid,size=16m mathtune-dev "$newdev"
for node in null zero full random urandom tty ptmx; do
  if [[ -e /dev/$node ]]; then
    : >"$newdev/$node"
    mount --bind "/dev/$node" "$newdev/$node"
  fi
done
for dir in pts shm mqueue; do
  if [[ -d /dev/$dir ]]; then
    mkdir "$newdev/$dir"
    mount --rbind "/dev/$dir" "$newdev/$dir"
  fi
done
ln -s /proc/self/fd "$newdev/fd"
ln -s /proc/self/fd/0 "$newdev/stdin"
ln -s /proc/self/fd/1 "$newdev/stdout"
ln -s /proc/self/fd/2 "$newdev/stderr"
mount --move "$newdev" /dev

while IFS=$'\t' read -r src dst mode; do
  [[ -n $src ]] || continue
  # Mount points that do not exist are made here; the runner removes the
  # ones it made on the host once no pod uses them any more.
  if [[ -d $src ]]; then
    mkdir -p "$dst"
  else
    mkdir -p "$(dirname "$dst")"
    [[ -e $dst ]] || : >"$dst"
  fi
  mount --bind "$src" "$dst"
  if [[ $mode == ro ]]; then
    mount -o remount,bind,ro "$dst"
  fi
done <"$table"

cd "$workdir"
exec "$@"
