#!/usr/bin/env bash
# Builds the local control plane's binaries from source through the Go module
# proxy (there is no Docker and no release download here) and caches them
# outside the work tree, keyed by version, so a second run costs nothing.
#
#   kube-apiserver kube-controller-manager kube-scheduler kubectl  (k8s.io/kubernetes)
#   kubelet kube-proxy                        the local node     (k8s.io/kubernetes)
#   etcd                                                           (go.etcd.io/etcd/server/v3)
#   kwok kwokctl                                                   (sigs.k8s.io/kwok)
#   helm                                                           (helm.sh/helm/v3)
#   local-path-provisioner                    the node's claims  (github.com/rancher/local-path-provisioner)
#   ascend-device-plugin                      emulated NPUs      (hack/ascend-device-plugin, this repository)
#   kueue                                     queueing/admission (sigs.k8s.io/kueue; started by kueue.sh)
#
# Each tool is built in its own throwaway wrapper module so that dependency
# versions of one never leak into another.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CACHE="${MATHTUNE_CACHE:-$HOME/.cache/mathtune}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { printf '[build] %s\n' "$*" >&2; }
# Go's own output (hundreds of `go: downloading` lines) goes to the build log;
# each build is one line with its time.
# shellcheck source=../lib/step.sh
source "$here/../lib/step.sh"

bindir() { echo "$CACHE/bin/$1-$2"; }
in_dir() { local dir="$1"; shift; (cd "$dir" && "$@"); }

have() { # have <tool> <version> <binary...>: all binaries present?
  local dir; dir="$(bindir "$1" "$2")"; shift 2
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

wrapper() { # wrapper <name>: a fresh module directory for one tool
  local dir="$CACHE/src/$1"
  rm -rf "$dir"; mkdir -p "$dir"; echo "$dir"
}

KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

build_kubernetes() {
  local v="$KUBE_VERSION" out; out="$(bindir kubernetes "$v")"
  # Only what is missing is built: a cache from before the node existed keeps
  # its control plane and gains kubelet and kube-proxy.
  local missing=() cmd
  for cmd in "${KUBE_CMDS[@]}"; do [[ -x "$out/$cmd" ]] || missing+=("$cmd"); done
  if [[ ${#missing[@]} -eq 0 ]]; then log "kubernetes $v cached in $out"; return; fi
  log "building kubernetes $v: ${missing[*]} (cold, all of them: 20-40 minutes on 2 cores)"
  local src; src="$(wrapper "kubernetes-$v")"
  local gomod
  step "go mod download k8s.io/kubernetes@$v" in_dir "$src" go mod download "k8s.io/kubernetes@$v"
  gomod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  # k8s.io/kubernetes replaces its staging modules with local paths that do not
  # exist in the module zip; point each at the matching published version.
  local minor="${v#v1.}"; minor="${minor%%.*}"; local patch="${v##*.}"
  {
    echo "module mathtune.local/kubernetes-bins"
    echo
    sed -n '/^go [0-9]/p' "$gomod"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    # keep kubernetes' own pins (require blocks) so we build what they tested
    awk '/^require \(/{p=1} p{print} p&&/^\)/{p=0}' "$gomod"
    echo
    echo "replace ("
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
      awk -v ver="v0.$minor.$patch" '{print "\t" $1 " => " $1 " " ver}'
    echo ")"
  } >"$src/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${KUBE_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } >"$src/tools.go"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  mkdir -p "$out"
  for cmd in "${missing[@]}"; do
    # Each binary lands under a temporary name first: an interrupted build
    # never leaves a truncated binary that `have` would take as cached.
    step "go build $cmd" in_dir "$src" go build -trimpath -ldflags "-s -w $ld" -o "$out/.$cmd.tmp" \
      "k8s.io/kubernetes/cmd/$cmd"
    mv "$out/.$cmd.tmp" "$out/$cmd"
  done
}

# build_go_tool <tool> <version> <module> <ldflags> <binary=package>...: one
# wrapper module that requires <module>@<version> and builds each package.
build_go_tool() {
  local tool="$1" v="$2" module="$3" ld="$4"; shift 4
  local out; out="$(bindir "$tool" "$v")"
  local names=() spec
  for spec in "$@"; do names+=("${spec%%=*}"); done
  if have "$tool" "$v" "${names[@]}"; then log "$tool $v cached in $out"; return; fi
  log "building $tool $v"
  local src; src="$(wrapper "$tool-$v")"
  printf 'module mathtune.local/%s-bins\n\ngo 1.23\n\nrequire %s %s\n' "$tool" "$module" "$v" >"$src/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for spec in "$@"; do printf '\t_ "%s"\n' "${spec#*=}"; done
    printf ')\n'
  } >"$src/tools.go"
  mkdir -p "$out.tmp"
  for spec in "$@"; do
    step "go build ${spec%%=*} ($tool $v)" in_dir "$src" go build -trimpath -ldflags "-s -w $ld" \
      -o "$out.tmp/${spec%%=*}" "${spec#*=}"
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_etcd() {
  build_go_tool etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "" etcd=go.etcd.io/etcd/server/v3
}

build_kwok() {
  build_go_tool kwok "$KWOK_VERSION" sigs.k8s.io/kwok \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION" \
    kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl
}

build_local_path() {
  build_go_tool local-path-provisioner "$LOCAL_PATH_VERSION" github.com/rancher/local-path-provisioner "" \
    local-path-provisioner=github.com/rancher/local-path-provisioner
}

# Our own emulated Ascend device plugin, cached by the digest of its source.
build_device_plugin() {
  local src="$here/../ascend-device-plugin" digest
  digest="$(cd "$src" && cat go.mod go.sum *.go | sha256sum | cut -c1-12)"
  local out; out="$(bindir ascend-device-plugin "$digest")"
  if have ascend-device-plugin "$digest" ascend-device-plugin; then log "ascend-device-plugin cached in $out"; return; fi
  log "building ascend-device-plugin $digest"
  mkdir -p "$out.tmp"
  step "go build ascend-device-plugin" in_dir "$src" go build -trimpath -ldflags "-s -w" \
    -o "$out.tmp/ascend-device-plugin" .
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_helm() {
  build_go_tool helm "$HELM_VERSION" helm.sh/helm/v3 \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    helm=helm.sh/helm/v3/cmd/helm
}

# Kueue's controller (admission, quotas, topology-aware placement), run as a
# local process by kueue.sh. Plain module, no replace directives; its version
# is built on the same Kubernetes libraries as KUBE_VERSION. Cold build 3m00s
# on 2 cores, module downloads included (6s again with Go's build cache
# warm); kueue.sh also reads its CRDs and webhook manifests from the module
# this leaves in Go's module cache.
build_kueue() {
  build_go_tool kueue "$KUEUE_VERSION" sigs.k8s.io/kueue \
    "-X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
    kueue=sigs.k8s.io/kueue/cmd/kueue
}

main() {
  local what=("$@"); [[ ${#what[@]} -gt 0 ]] || what=(etcd kwok helm kubernetes local_path device_plugin kueue)
  local start=$SECONDS
  log "Go's output goes to $STEP_LOG"
  for t in "${what[@]}"; do "build_$t"; done
  log "binaries ready under $CACHE/bin ($(( SECONDS - start ))s)"
}
main "$@"
