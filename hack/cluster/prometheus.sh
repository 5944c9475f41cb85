#!/usr/bin/env bash
# Makes sure Prometheus and promtool (Debian's `prometheus` package) are on this
# machine; the monitoring tests and `make test` call it. Installing is the only
# thing it does: the package's own service is stopped and disabled again,
# because the tests start their own Prometheus on loopback for the length of
# the session and nothing may outlive it.
set -euo pipefail
log() { printf '[prometheus] %s\n' "$*" >&2; }
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  log "$(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  log "prometheus/promtool missing: run 'sudo apt-get install -y prometheus' (Debian package), then retry"
  exit 1
fi
log "installing Debian's prometheus package (prometheus + promtool)"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101 tells the package scripts not to start the service at all.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Belt and braces for machines where policy-rc.d is ignored (systemd running).
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
log "$(prometheus --version 2>&1 | head -1)"
