#!/usr/bin/env bash
# Kueue's controller on the local cluster (make kueue), as a plain process
# like the rest of the control plane: admission of suspended Jobs against
# quotas, all-or-nothing placement of their pods on nodes (topology-aware
# scheduling).
#
#   kueue.sh up     start it (idempotent: a running, answering Kueue is kept)
#   kueue.sh down   stop it and remove its webhook configurations
#
# `up` creates, on the cluster:
#   - Kueue's CRDs (kueue.x-k8s.io), from the module build-binaries.sh left in
#     Go's module cache, so they match the binary; v1beta1 <-> v1beta2
#     conversion through Kueue's webhook, as upstream deploys them;
#   - namespace kueue-system (empty: Kueue's home namespace);
#   - kueue-mutating-webhook-configuration / kueue-validating-webhook-
#     configuration: Kueue's own webhooks for batch/v1 Jobs and its
#     kueue.x-k8s.io objects, called on https://127.0.0.1:$KUEUE_WEBHOOK_PORT.
#     The Job webhooks see only Jobs labelled kueue.x-k8s.io/queue-name:
#     with Kueue stopped, no other Job of the cluster is refused;
#   - kueue-queues.yaml: Topology npu-topology, ResourceFlavor ascend910,
#     ClusterQueue npu-cluster-queue (16 NPUs). LocalQueues are namespaced:
#     whoever uses the queue makes one in its own namespace.
# and, on this machine, under $CLUSTER_DIR/kueue/: a CA and a serving
# certificate for 127.0.0.1, config.yaml (from kueue-config.yaml), kueue.log
# and kueue.pid. Its command line names that directory, so down.sh's
# `pkill -f $CLUSTER_DIR` stops it with the cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
KUEUE_BIN="$CACHE/bin/kueue-$KUEUE_VERSION/kueue"
KDIR="$CLUSTER_DIR/kueue"
WEBHOOK_PORT="${KUEUE_WEBHOOK_PORT:-9443}"
HEALTH_ADDRESS="127.0.0.1:${KUEUE_HEALTH_PORT:-18081}"
METRICS_ADDRESS="127.0.0.1:${KUEUE_METRICS_PORT:-18443}"
WEBHOOKS=(mutatingwebhookconfiguration/kueue-mutating-webhook-configuration
          validatingwebhookconfiguration/kueue-validating-webhook-configuration)
klog() { printf '[kueue] %s\n' "$*" >&2; }

running() { # the process of the pid file is alive and is our kueue
  local pid; pid="$(cat "$KDIR/kueue.pid" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KDIR/config.yaml"
}

ready() { # health endpoint ready, and a request through its webhooks answered
  curl -fsS "http://$HEALTH_ADDRESS/readyz" >/dev/null 2>&1 || return 1
  kc create --dry-run=server -o name -f - >/dev/null 2>&1 <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: kueue-sh-webhook-probe}
EOF
}

stop() {
  if running; then
    local pid; pid="$(cat "$KDIR/kueue.pid")"
    kill "$pid"
    for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.2; done
    [[ -d /proc/$pid ]] && kill -9 "$pid"
    klog "stopped (pid $pid)"
  fi
  rm -f "$KDIR/kueue.pid"
}

module_dir() { # Kueue's module in Go's module cache (build-binaries.sh put it there)
  (cd "$KDIR" && GOFLAGS= GOTOOLCHAIN=local go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION") |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

make_certs() { # a CA and a serving certificate for IP 127.0.0.1, once per cluster
  local d="$KDIR/certs"
  [[ -s "$d/tls.crt" && -s "$d/tls.key" && -s "$d/ca.crt" ]] && return
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=mathtune-kueue-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
  openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile <(echo "subjectAltName=IP:127.0.0.1") -out "$d/tls.crt" 2>/dev/null
}

# Kueue's CRDs, each converting between kueue.x-k8s.io/v1beta1 and v1beta2
# (stored) through Kueue's /convert on this machine where Kueue's own
# kustomization patches that in (config/components/crd/patches): without it a
# v1beta1 client (the operator uses v1beta1) would get v1beta2 objects
# relabelled, their v1beta1-only fields dropped.
crds() {
  python3 - "$1/config/components/crd" "$KDIR/certs/ca.crt" "$WEBHOOK_PORT" <<'EOF'
import base64, pathlib, sys, yaml
crd_dir, ca_file, port = sys.argv[1:]
ca = base64.b64encode(open(ca_file, "rb").read()).decode()
docs = []
for path in sorted(pathlib.Path(crd_dir, "bases").glob("*.yaml")):
    crd = yaml.safe_load(path.read_text())
    if pathlib.Path(crd_dir, "patches", f"webhook_in_{crd['spec']['names']['plural']}.yaml").exists():
        crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": f"https://127.0.0.1:{port}/convert", "caBundle": ca},
            "conversionReviewVersions": ["v1"]}}
    docs.append(crd)
print(yaml.safe_dump_all(docs))
EOF
}

# Kueue's webhook manifests (the kubebuilder output in its module), trimmed to
# Jobs and Kueue's own objects and pointed at this machine.
webhook_configurations() {
  python3 - "$1/config/components/webhook/manifests.yaml" "$KDIR/certs/ca.crt" "$WEBHOOK_PORT" <<'EOF'
import base64, sys, yaml
manifests, ca_file, port = sys.argv[1:]
ca = base64.b64encode(open(ca_file, "rb").read()).decode()
queued = {"matchExpressions": [{"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]}
docs = [d for d in yaml.safe_load_all(open(manifests)) if d]
for doc in docs:
    doc["metadata"] = {"name": "kueue-" + doc["metadata"]["name"]}
    kept = []
    for hook in doc["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        if "-batch-v1-job" in path:
            hook["objectSelector"] = queued
        elif "-kueue-x-k8s-io-" not in path:
            continue  # other integrations are off (kueue-config.yaml)
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
        kept.append(hook)
    doc["webhooks"] = kept
print(yaml.safe_dump_all(docs))
EOF
}

up() {
  [[ -x "$KUEUE_BIN" ]] || { klog "missing $KUEUE_BIN: run 'make binaries' first"; exit 1; }
  cluster_healthy || { klog "cluster '$CLUSTER_NAME' is not running: run 'make cluster' first"; exit 1; }
  mkdir -p "$KDIR"
  local start=$SECONDS mod
  mod="$(module_dir)"
  if running && ready; then
    klog "already running (pid $(cat "$KDIR/kueue.pid"))"
  else
    stop
    if curl -fsS "http://$HEALTH_ADDRESS/readyz" >/dev/null 2>&1; then
      klog "a Kueue not started from $KDIR answers on $HEALTH_ADDRESS (left over from a cluster made again?): stop it first"
      exit 1
    fi
    make_certs
    crds "$mod" | kc apply --server-side --force-conflicts -f - >/dev/null
    kc wait --for condition=established --timeout 60s -f "$mod/config/components/crd/bases/" >/dev/null
    kc get namespace kueue-system >/dev/null 2>&1 || kc create namespace kueue-system >/dev/null
    webhook_configurations "$mod" | kc apply -f - >/dev/null
    sed -e "s|@CERT_DIR@|$KDIR/certs|" -e "s|@WEBHOOK_PORT@|$WEBHOOK_PORT|" \
        -e "s|@HEALTH_ADDRESS@|$HEALTH_ADDRESS|" -e "s|@METRICS_ADDRESS@|$METRICS_ADDRESS|" \
        "$here/kueue-config.yaml" >"$KDIR/config.yaml"
    # With internal cert management off, Kueue reads its metrics certificate
    # from the fixed path /etc/kueue/metrics/certs (cmd/kueue/main.go). Rather
    # than write under /etc, the process gets a mount namespace of its own in
    # which /etc is an overlay whose upper layer (here) holds that directory;
    # the rest of the machine never sees it, and it ends with the process.
    local upper="$KDIR/etc-overlay/upper" work="$KDIR/etc-overlay/work"
    mkdir -p "$upper/kueue/metrics/certs" "$work"
    cp "$KDIR/certs/tls.crt" "$KDIR/certs/tls.key" "$upper/kueue/metrics/certs/"
    klog "starting Kueue $KUEUE_VERSION (log: $KDIR/kueue.log)"
    KUBECONFIG="$KUBECONFIG_FILE" setsid unshare --mount --propagation private \
      sh -c 'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && shift 2 && exec "$@"' \
      sh "$upper" "$work" "$KUEUE_BIN" --config "$KDIR/config.yaml" \
      </dev/null >>"$KDIR/kueue.log" 2>&1 &
    echo $! >"$KDIR/kueue.pid"
    for _ in $(seq 240); do
      ready && break
      running || { tail -20 "$KDIR/kueue.log" >&2; klog "Kueue exited: see $KDIR/kueue.log"; exit 1; }
      sleep 0.5
    done
    ready || { tail -20 "$KDIR/kueue.log" >&2; klog "Kueue not ready after 120s: see $KDIR/kueue.log"; exit 1; }
  fi
  kc apply --server-side -f "$here/kueue-queues.yaml" >/dev/null
  klog "ready in $(( SECONDS - start ))s: ClusterQueue npu-cluster-queue, ResourceFlavor ascend910, Topology npu-topology"
}

down() {
  stop
  # Without Kueue, its webhooks would refuse what they are called for.
  if cluster_healthy; then
    kc delete --ignore-not-found "${WEBHOOKS[@]}" >/dev/null
  fi
  klog "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
