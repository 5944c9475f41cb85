#!/usr/bin/env bash
# Builds the local control plane's binaries from source through the Go module
# proxy (there is no Docker and no release download here) and caches them
# outside the work tree, keyed by version, so a second run costs nothing.
#
#   kube-apiserver kube-controller-manager kube-scheduler kubectl  (k8s.io/kubernetes)
#   etcd                                                           (go.etcd.io/etcd/server/v3)
#   kwok kwokctl                                                   (sigs.k8s.io/kwok)
#   helm                                                           (helm.sh/helm/v3)
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

bindir() { echo "$CACHE/bin/$1-$2"; }

have() { # have <tool> <version> <binary...>: all binaries present?
  local dir; dir="$(bindir "$1" "$2")"; shift 2
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

wrapper() { # wrapper <name>: a fresh module directory for one tool
  local dir="$CACHE/src/$1"
  rm -rf "$dir"; mkdir -p "$dir"; echo "$dir"
}

build_kubernetes() {
  local v="$KUBE_VERSION" out; out="$(bindir kubernetes "$v")"
  if have kubernetes "$v" kube-apiserver kube-controller-manager kube-scheduler kubectl; then
    log "kubernetes $v cached in $out"; return
  fi
  log "building kubernetes $v (cold: 20-40 minutes on 2 cores)"
  local src; src="$(wrapper "kubernetes-$v")"
  local gomod
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
  cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  mkdir -p "$out.tmp"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    log "  go build $cmd"
    (cd "$src" && go build -trimpath -ldflags "-s -w $ld" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_etcd() {
  local v="$ETCD_VERSION" out; out="$(bindir etcd "$v")"
  if have etcd "$v" etcd; then log "etcd $v cached in $out"; return; fi
  log "building etcd $v"
  local src; src="$(wrapper "etcd-$v")"
  printf 'module mathtune.local/etcd-bin\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$src/tools.go"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_kwok() {
  local v="$KWOK_VERSION" out; out="$(bindir kwok "$v")"
  if have kwok "$v" kwok kwokctl; then log "kwok $v cached in $out"; return; fi
  log "building kwok $v"
  local src; src="$(wrapper "kwok-$v")"
  printf 'module mathtune.local/kwok-bins\n\ngo 1.24\n\nrequire sigs.k8s.io/kwok %s\n' "$v" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "sigs.k8s.io/kwok/cmd/kwok"\n\t_ "sigs.k8s.io/kwok/cmd/kwokctl"\n)\n' >"$src/tools.go"
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION"
  mkdir -p "$out.tmp"
  for cmd in kwok kwokctl; do
    (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out.tmp/$cmd" "sigs.k8s.io/kwok/cmd/$cmd")
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_helm() {
  local v="$HELM_VERSION" out; out="$(bindir helm "$v")"
  if have helm "$v" helm; then log "helm $v cached in $out"; return; fi
  log "building helm $v"
  local src; src="$(wrapper "helm-$v")"
  printf 'module mathtune.local/helm-bin\n\ngo 1.24\n\nrequire helm.sh/helm/v3 %s\n' "$v" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >"$src/tools.go"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out.tmp/helm" helm.sh/helm/v3/cmd/helm)
  rm -rf "$out"; mv "$out.tmp" "$out"
}

main() {
  local what=("$@"); [[ ${#what[@]} -gt 0 ]] || what=(etcd kwok helm kubernetes)
  local start=$SECONDS
  for t in "${what[@]}"; do "build_$t"; done
  log "binaries ready under $CACHE/bin ($(( SECONDS - start ))s)"
}
main "$@"
