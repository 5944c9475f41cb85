#!/usr/bin/env bash
# Builds the project's images here, without Docker and without pulling:
#
#   python-base   Debian bookworm + python3.11, made with mmdebstrap from
#                 Debian's packages (stands in for python:3.11-slim-bookworm,
#                 which cannot be pulled here)
#   pause         the kubelet's sandbox image, from pause.c
#   operator      images/operator/Dockerfile      } built by buildah from the
#   pipeline-cpu  images/pipeline-cpu/Dockerfile  } Dockerfiles users build
#   pipeline-ascend-nocann  images/pipeline-ascend/Dockerfile on the local
#                 base instead of CANN (which cannot be had here): every layer
#                 but CANN's builds, and the CANN wrapper's fallback is run
#   *-deps        the `deps` stage of the two pipeline Dockerfiles (MindSpore,
#                 MindFormers and the other dependencies), keyed by the
#                 Dockerfile and pyproject.toml only, and handed to the full
#                 build as DEPS_IMAGE: a code change rebuilds in seconds
#
# Each image is tagged localhost/mathtune/<name>:<digest of its inputs> and
# saved as an OCI archive under $MATHTUNE_CACHE/images/, so an unchanged image
# is never built twice; the node imports the archives (hack/node/up.sh).
#
#   build.sh [image...]   build what is missing (default: all)
#   build.sh refs         print NAME_IMAGE=<ref> lines without building
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE="${MATHTUNE_CACHE:-$HOME/.cache/mathtune}"
IMAGES="$CACHE/images"
REGISTRY=localhost/mathtune
DEBIAN_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
log() { printf '[images] %s\n' "$*" >&2; }
in_dir() { local dir="$1"; shift; (cd "$dir" && "$@"); }
# Build tools' output (pip, apt) goes to a log file; each build is one line with its time.
STEP_PREFIX="[images]"
# shellcheck source=../lib/step.sh
source "$here/../lib/step.sh"

# digest_of <text> <path...>: sha256 over a text and the tracked or new files
# under the paths (what .gitignore drops, e.g. __pycache__, never counts).
digest_of() {
  local text="$1"; shift
  {
    printf '%s\n' "$text"
    if [[ $# -gt 0 ]]; then
      (cd "$repo" && git ls-files -co --exclude-standard -- "$@" | LC_ALL=C sort | while read -r f; do
        if [[ -f "$f" ]]; then printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; fi
      done)
    fi
  } | sha256sum | cut -c1-12
}

# The base's key is its recipe, not this file: editing the script elsewhere
# must not rebuild every image. Change BASE_RECIPE when build_python_base
# changes what it makes.
BASE_RECIPE="mmdebstrap $DEBIAN_SUITE minbase $BASE_PACKAGES, no docs/man/locales"
python_base_tag() { digest_of "$BASE_RECIPE"; }
pause_tag() { digest_of "gcc -static" hack/images/pause.c; }
operator_tag() { digest_of "base $(python_base_tag)" images/operator crds operator; }
pipeline_cpu_deps_tag() { digest_of "base $(python_base_tag)" images/pipeline-cpu/Dockerfile crds/pyproject.toml pipeline/pyproject.toml; }
pipeline_cpu_tag() { digest_of "deps $(pipeline_cpu_deps_tag)" images/pipeline-cpu crds pipeline; }
pipeline_ascend_nocann_deps_tag() {
  digest_of "base $(python_base_tag)" images/pipeline-ascend/Dockerfile crds/pyproject.toml pipeline/pyproject.toml
}
pipeline_ascend_nocann_tag() { digest_of "deps $(pipeline_ascend_nocann_deps_tag)" images/pipeline-ascend crds pipeline; }

ref() { echo "$REGISTRY/$1:$("${1//-/_}_tag")"; }
archive() { echo "$IMAGES/$1-$("${1//-/_}_tag").oci.tar"; }

# save <name>: the built image as an OCI archive that containerd can import.
# The archive is the cache: the image leaves buildah's storage (but the base,
# which every build starts from), and archives of earlier builds of the same
# image go, so the cache holds one copy of each image, not one per change.
save() {
  local name="$1" out; out="$(archive "$name")"
  buildah push --quiet "$(ref "$name")" "oci-archive:$out.tmp:$(ref "$name")" >/dev/null
  mv "$out.tmp" "$out"
  log "$name: $(ref "$name") ($(du -m "$out" | cut -f1) MiB) -> $out"
  local old
  for old in "$IMAGES/$name"-*.oci.tar; do
    if [[ "$old" != "$out" && "$old" =~ /$name-[0-9a-f]{12}\.oci\.tar$ ]]; then rm -f "$old"; fi
  done
  if [[ "$name" == python-base || "$name" == *-deps ]]; then
    # Starting points of later builds stay in storage; their older versions go.
    local tag
    for tag in $(buildah images --format '{{.Name}}:{{.Tag}}' "$REGISTRY/$name" 2>/dev/null); do
      if [[ "$tag" != "$(ref "$name")" ]]; then buildah rmi --force "$tag" >/dev/null 2>&1 || true; fi
    done
  else
    buildah rmi --force "$(ref "$name")" >/dev/null
  fi
  buildah rmi --prune >/dev/null 2>&1 || true
}

# present <name>: the image is in buildah's storage (loaded from the cache
# archive when only that exists); false when it must be built.
present() {
  local name="$1"
  buildah inspect --type image "$(ref "$name")" >/dev/null 2>&1 && return 0
  [[ -f "$(archive "$name")" ]] || return 1
  buildah pull --quiet "oci-archive:$(archive "$name")" >/dev/null
}

build_python_base() {
  local root; root="$(mktemp -d)"
  # --variant minbase keeps only what apt needs; docs and man pages go too
  # (their copyright files stay).
  step "mmdebstrap $DEBIAN_SUITE (python-base)" mmdebstrap --variant=minbase --include="$BASE_PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Retries "3"' \
    "$DEBIAN_SUITE" "$root/rootfs.tar" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE main" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
  local c; c="$(buildah from scratch)"
  buildah add --quiet "$c" "$root/rootfs.tar" / >/dev/null
  buildah config --env LANG=C.UTF-8 --cmd python3 \
    --label org.opencontainers.image.title=mathtune-python-base "$c"
  buildah commit --quiet "$c" "$(ref python-base)" >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$root"
}

build_pause() {
  local dir; dir="$(mktemp -d)"
  gcc -static -O2 -s -o "$dir/pause" "$here/pause.c"
  local c; c="$(buildah from scratch)"
  buildah copy --quiet "$c" "$dir/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 \
    --label org.opencontainers.image.title=mathtune-pause "$c"
  buildah commit --quiet "$c" "$(ref pause)" >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$dir"
}

# bud <name> <dockerfile>: the Dockerfile as `docker build` runs it, on the
# local base. The host's CA bundle is mounted for the build's pip only (the
# network here may re-sign TLS); it is not copied into the image.
bud() {
  local name="$1" dockerfile="$2"; shift 2
  ensure python-base
  present python-base
  local mounts=()
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] &&
    mounts=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  step "buildah bud $name ($dockerfile)" in_dir "$repo" buildah bud --quiet --isolation chroot --network host \
    --layers=false "${mounts[@]}" --build-arg "PYTHON_IMAGE=$(ref python-base)" "$@" -f "$dockerfile" \
    -t "$(ref "$name")" .
}

build_operator() { bud operator images/operator/Dockerfile; }
build_pipeline_cpu_deps() { bud pipeline-cpu-deps images/pipeline-cpu/Dockerfile --target deps; }
build_pipeline_cpu() {
  ensure pipeline-cpu-deps
  present pipeline-cpu-deps
  bud pipeline-cpu images/pipeline-cpu/Dockerfile --build-arg "DEPS_IMAGE=$(ref pipeline-cpu-deps)"
}
# The Ascend Dockerfile with the local base standing in for CANN: MindSpore's
# x86-64 wheel instead of aarch64, no set_env.sh. What it proves: every COPY
# and RUN of the Dockerfile works, and the stage command on PATH is the CANN
# wrapper, which runs the real pipeline (tests/integration/node).
build_pipeline_ascend_nocann_deps() {
  bud pipeline-ascend-nocann-deps images/pipeline-ascend/Dockerfile --target deps \
    --build-arg "CANN_IMAGE=$(ref python-base)"
}
build_pipeline_ascend_nocann() {
  ensure pipeline-ascend-nocann-deps
  present pipeline-ascend-nocann-deps
  bud pipeline-ascend-nocann images/pipeline-ascend/Dockerfile --build-arg "CANN_IMAGE=$(ref python-base)" \
    --build-arg "DEPS_IMAGE=$(ref pipeline-ascend-nocann-deps)"
}

ensure() {
  local name="$1" start=$SECONDS
  if [[ -f "$(archive "$name")" ]]; then log "$name cached: $(ref "$name")"; return; fi
  log "building $name"
  "build_${name//-/_}"
  save "$name"
  log "$name ready in $(( SECONDS - start ))s"
}

main() {
  local all=(python-base pause operator pipeline-cpu pipeline-ascend-nocann)
  if [[ "${1:-}" == refs ]]; then
    for n in "${all[@]}"; do
      local var="${n//-/_}"; printf '%s_IMAGE=%s\n' "${var^^}" "$(ref "$n")"
      printf '%s_ARCHIVE=%s\n' "${var^^}" "$(archive "$n")"
    done
    return
  fi
  for tool in buildah mmdebstrap gcc; do
    command -v "$tool" >/dev/null || { log "$tool missing: run 'make node-deps'"; exit 1; }
  done
  mkdir -p "$IMAGES"
  local what=("$@"); [[ ${#what[@]} -gt 0 ]] || what=("${all[@]}")
  local start=$SECONDS
  log "build tools' output goes to $STEP_LOG"
  for n in "${what[@]}"; do ensure "$n"; done
  log "images ready ($(( SECONDS - start ))s)"
}
main "$@"
