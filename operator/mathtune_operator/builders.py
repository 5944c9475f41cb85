"""Kubernetes objects of a run, built as plain dicts. Pure: no API calls.

Every builder takes the run resource (`body`: apiVersion, kind, metadata with
name/namespace/uid/generation, spec as defaulted by the API server) and
returns the object to create. Creating them is `children`'s job.
"""
import json
from typing import Dict, List, Optional

from . import names, plan, pod_template
from .types import Obj

NPU_RESOURCE = "huawei.com/Ascend910"
NPU_NODE_LABEL = {"accelerator": "huawei-Ascend910"}
NPU_TOLERATION = {"key": NPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
ASCEND_DRIVER = "/usr/local/Ascend/driver"
EXIT_PERMANENT = 2  # docs/contract.md: bad spec or bad input, never retried
# The pipeline images' user (images/pipeline-*/Dockerfile).
STAGE_UID = 10001
# The one writable place inside a stage container besides the work volume:
# the root filesystem is read-only, and MindSpore, matplotlib and jieba write
# caches under $HOME and the working directory.
SCRATCH = "/tmp"

# Pod Security "restricted", which stage pods meet so runs work in namespaces
# that enforce it (the Ascend profile's hostPath driver mount aside, which
# needs "privileged" by Pod Security's rules).
POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "runAsUser": STAGE_UID, "runAsGroup": STAGE_UID,
                        "fsGroup": STAGE_UID, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                              "capabilities": {"drop": ["ALL"]}}


def _meta(body: Obj) -> Obj:
    return body.get("metadata") or {}


def _spec(body: Obj) -> Obj:
    return body.get("spec") or {}


def owner_reference(body: Obj) -> Obj:
    """Children are owned by the run: deleting it garbage-collects them."""
    meta = _meta(body)
    return {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def spec_document(body: Obj) -> Obj:
    """What stage pods read at /etc/mathtune/spec.json (docs/contract.md §1)."""
    meta = _meta(body)
    return {"apiVersion": names.API_VERSION, "kind": names.KIND,
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid")},
            "spec": _spec(body)}


def config_map(body: Obj) -> Obj:
    meta = _meta(body)
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": names.config_map(meta["name"]), "namespace": meta.get("namespace"),
                     "labels": names.labels(meta["name"]), "ownerReferences": [owner_reference(body)]},
        "data": {"spec.json": json.dumps(spec_document(body), indent=2, sort_keys=True)},
    }


def claim_name(body: Obj) -> str:
    return (_spec(body).get("storage") or {}).get("pvcName") or names.claim(_meta(body)["name"])


def persistent_volume_claim(body: Obj) -> Optional[Obj]:
    """The work volume, or None when the spec names an existing claim.

    Deliberately NOT owner-referenced: deleting a run must keep its data
    (checkpoints, adapters, reports). Delete `<run>-work` by hand when done.
    Multi-node training writes from several nodes at once: ReadWriteMany.
    """
    spec, meta = _spec(body), _meta(body)
    storage = spec.get("storage") or {}
    if storage.get("pvcName"):
        return None
    nodes = int((spec.get("resources") or {}).get("nodes", 1))
    pvc: Obj = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": names.claim(meta["name"]), "namespace": meta.get("namespace"),
                     "labels": names.labels(meta["name"])},
        "spec": {"accessModes": ["ReadWriteMany" if nodes > 1 else "ReadWriteOnce"],
                 "resources": {"requests": {"storage": storage.get("size", "200Gi")}}},
    }
    if storage.get("storageClassName"):
        pvc["spec"]["storageClassName"] = storage["storageClassName"]
    return pvc


def headless_service(body: Obj) -> Obj:
    """Stable DNS names `<job>-<index>.<svc>` for the pods of multi-node training."""
    meta = _meta(body)
    run = meta["name"]
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": names.service(run), "namespace": meta.get("namespace"),
                     "labels": names.labels(run, "train"), "ownerReferences": [owner_reference(body)]},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {names.LABEL_RUN: run, names.LABEL_STAGE: "train"},
                 "ports": [{"name": "msrun", "port": names.MSRUN_PORT, "targetPort": names.MSRUN_PORT}]},
    }


def master_address(body: Obj) -> str:
    """Rank 0's stable hostname. msrun needs an IP on rank 0's own interface
    (a Service ClusterIP never matches), and pod IPs are only known once pods
    run, so the train stage resolves this name to rank 0's pod IP itself
    before calling msrun (docs/contract.md §2)."""
    meta = _meta(body)
    run = meta["name"]
    return f"{names.job(run, 'train')}-0.{names.service(run)}.{meta.get('namespace')}.svc"


def stage_args(body: Obj, stage: str) -> List[str]:
    spec, meta = _spec(body), _meta(body)
    data_path = (spec.get("storage") or {}).get("dataPath", "/data")
    args = [stage, "--spec", names.SPEC_FILE, "--run-dir", names.run_dir(data_path, meta["name"]),
            "--result-file", names.TERMINATION_LOG]
    if stage == "train":
        # A retried training pod continues from the last complete checkpoint.
        args += ["--resume", "auto"]
        if plan.is_multi_node(spec, stage):
            args += ["--node-rank", "$(MATHTUNE_NODE_RANK)", "--master-addr", master_address(body),
                     "--master-port", str(names.MSRUN_PORT)]
    return args


def _env(body: Obj, stage: str, user: List[Obj]) -> List[Obj]:
    """The operator's variables, then the templates' (the CRD refuses a
    template variable of an operator's name)."""
    meta = _meta(body)
    env = [
        {"name": "MATHTUNE_RUN", "value": meta["name"]},
        {"name": "MATHTUNE_STAGE", "value": stage},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # Made by the stage itself (mathtune-pipeline's entry): MindFormers'
        # mindpet refuses a $HOME its user does not own, and an emptyDir is
        # root's.
        {"name": "HOME", "value": f"{SCRATCH}/home"},
    ]
    if plan.is_multi_node(_spec(body), stage):
        # Declared here (not relying on the Job controller's injection) so
        # $(MATHTUNE_NODE_RANK) in args always expands.
        env.append({"name": "MATHTUNE_NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}})
    return env + user


def _mind_cluster_env(spec: Obj, npus: int) -> List[Obj]:
    """MindCluster's whole-card jobs take the chips Volcano's Ascend plugin
    chose from its pod annotation (Ascend Docker Runtime reads this variable;
    the device plugin checks this exact fieldPath); the stage then runs one
    worker per chip (mindformers/launch.local_workers)."""
    if not (npus and mind_cluster(spec)):
        return []
    return [{"name": "ASCEND_VISIBLE_DEVICES", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{NPU_RESOURCE}']"}}}]


def _tolerations(spec: Obj, npus: int, template: List[Obj]) -> List[Obj]:
    """The user's, plus the NPU nodes' taint for every Ascend-profile stage
    and for any pod that asks for NPUs (a cpu-profile training pod with
    resources.requestNpusOnCpu): where the NPUs are, the taint is."""
    user = list((spec.get("scheduling") or {}).get("tolerations") or []) + template
    if (spec.get("profile", "ascend") == "ascend" or npus) and NPU_TOLERATION not in user:
        user.append(dict(NPU_TOLERATION))
    return user


def _node_selector(spec: Obj, template: Dict[str, str]) -> Dict[str, str]:
    """Ascend profile: every stage runs on Ascend nodes, NPU stages or not. The
    pipeline image is built for the Ascend servers (aarch64, CANN), and CPU
    nodes of another architecture could not run it."""
    selector = {}
    if spec.get("profile", "ascend") == "ascend":
        selector.update(NPU_NODE_LABEL)
    selector.update((spec.get("scheduling") or {}).get("nodeSelector") or {})
    selector.update(template)
    return selector


def job(body: Obj, stage: str, suspend: bool = False, attempt: int = 1) -> Obj:
    """The Job that runs one stage. `attempt` numbers the Jobs of multi-node
    training: each is one attempt of every rank (see `_retry_policy`)."""
    spec, meta = _spec(body), _meta(body)
    run = meta["name"]
    policy = spec.get("runPolicy") or {}
    sched = spec.get("scheduling") or {}
    images = spec.get("images") or {}
    storage = spec.get("storage") or {}
    ascend = spec.get("profile", "ascend") == "ascend"
    npus = plan.npus_for(spec, stage)
    multi = plan.is_multi_node(spec, stage)
    labels = names.labels(run, stage)
    shape = pod_template.merged(spec, stage)

    mounts = [{"name": "work", "mountPath": storage.get("dataPath", "/data")},
              {"name": "spec", "mountPath": names.SPEC_MOUNT, "readOnly": True},
              {"name": "shm", "mountPath": "/dev/shm"},
              {"name": "scratch", "mountPath": SCRATCH}]
    volumes = [{"name": "work", "persistentVolumeClaim": {"claimName": claim_name(body)}},
               {"name": "spec", "configMap": {"name": names.config_map(run)}},
               # Dataset workers share tensors through /dev/shm; the runtime's 64 MiB default is too small.
               {"name": "shm", "emptyDir": {"medium": "Memory"}},
               {"name": "scratch", "emptyDir": {}}] + shape["volumes"]
    container = {
        "name": names.CONTAINER,
        "image": images.get("pipeline", "mathtune/pipeline-ascend:0.1.0"),
        "imagePullPolicy": images.get("pullPolicy", "IfNotPresent"),
        "command": ["mathtune-pipeline"],
        "args": stage_args(body, stage),
        "env": _env(body, stage, shape["env"] + _mind_cluster_env(spec, npus)),
        "workingDir": SCRATCH,
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        # The stage's last act is writing its result JSON here (docs/contract.md §3);
        # if it dies before that, the log tail explains why.
        "terminationMessagePath": names.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if shape["envFrom"]:
        container["envFrom"] = shape["envFrom"]
    npu = {NPU_RESOURCE: str(npus)} if npus else {}
    container["resources"] = {"requests": {**shape["requests"], **npu}}
    if shape["limits"] or npu:
        container["resources"]["limits"] = {**shape["limits"], **npu}
    if ascend and npus:
        mounts.append({"name": "ascend-driver", "mountPath": ASCEND_DRIVER, "readOnly": True})
        volumes.append({"name": "ascend-driver", "hostPath": {"path": ASCEND_DRIVER, "type": "Directory"}})
    if multi:
        container["ports"] = [{"name": "msrun", "containerPort": names.MSRUN_PORT}]
    # After the operator's own, so a user's mount can never shadow them
    # (the CRD refuses their paths).
    mounts.extend(shape["volumeMounts"])

    pod_spec = {
        "restartPolicy": "Never",
        "securityContext": dict(POD_SECURITY_CONTEXT),
        "containers": [container],
        "volumes": volumes,
        "tolerations": _tolerations(spec, npus, shape["tolerations"]),
    }
    for key in ("serviceAccountName", "imagePullSecrets", "affinity"):
        if shape[key]:
            pod_spec[key] = shape[key]
    selector = _node_selector(spec, shape["nodeSelector"])
    if npus and mind_cluster(spec):
        # The node label that picks MindCluster's NPU handler (910B, A3...).
        selector["accelerator-type"] = mind_cluster(spec)["acceleratorType"]
    if selector:
        pod_spec["nodeSelector"] = selector
    if sched.get("priorityClassName"):
        pod_spec["priorityClassName"] = sched["priorityClassName"]
    if sched.get("schedulerName"):
        pod_spec["schedulerName"] = sched["schedulerName"]
    if multi:
        pod_spec["subdomain"] = names.service(run)
    cluster_labels = mind_cluster_labels(spec) if npus else {}
    template_meta: Obj = {"labels": {**shape["labels"], **cluster_labels, **labels}}
    annotations = dict(shape["annotations"])
    if sched.get("queue"):
        annotations[names.ANNOTATION_QUEUE] = sched["queue"]
    if needs_pod_group(spec, stage):
        annotations[names.ANNOTATION_POD_GROUP] = names.pod_group(run, stage)
    if annotations:
        template_meta["annotations"] = annotations

    job_labels = dict(labels)
    if local_queue(spec):
        # On the Job only: on the pods it would make them Kueue's plain pods.
        job_labels[names.LABEL_KUEUE_QUEUE] = local_queue(spec)
    job_spec = {
        # Under Kueue a Job is made suspended and Kueue admits it (unsuspends)
        # when its quota allows; the operator never unsuspends it itself.
        "suspend": bool(suspend) or bool(local_queue(spec)),
        **_retry_policy(spec, multi),
        "template": {"metadata": template_meta, "spec": pod_spec},
    }
    if int(policy.get("activeDeadlineSeconds", 0) or 0) > 0:
        job_spec["activeDeadlineSeconds"] = int(policy["activeDeadlineSeconds"])
    if multi:
        nodes = int((spec.get("resources") or {}).get("nodes", 1))
        job_spec.update({"completionMode": "Indexed", "completions": nodes, "parallelism": nodes})
    job_annotations = {"mathtune.dev/generation": str(meta.get("generation", 1))}
    if multi:
        job_annotations[names.ANNOTATION_ATTEMPT] = str(attempt)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": names.job(run, stage), "namespace": meta.get("namespace"), "labels": job_labels,
                     "annotations": job_annotations, "ownerReferences": [owner_reference(body)]},
        "spec": job_spec,
    }


def _retry_policy(spec: Obj, multi: bool) -> Obj:
    """How the Job controller retries a stage's pods.

    Exit code 2 is a bad spec or bad input: retrying cannot help (Kubeflow's
    ExitCode restart policy does the same). Evicted or preempted pods do not
    count against the retries.

    Multi-node training is retried whole, never rank by rank: the ranks of
    one msrun job rendezvous once, so a replacement rank would join nobody
    while the others hang. Each Job is one attempt: the first failed rank
    fails the Job (backoffLimitPerIndex 0, maxFailedIndexes 0), which stops
    every other rank, and the operator starts the next attempt as a new Job
    that resumes from the last checkpoint every rank completed.
    """
    permanent = {"action": "FailJob", "onExitCodes": {"containerName": names.CONTAINER, "operator": "In",
                                                      "values": [EXIT_PERMANENT]}}
    disrupted = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    if multi:
        # A preempted rank fails the attempt too: its replacement could not
        # rejoin the others' rendezvous.
        return {"backoffLimitPerIndex": 0, "maxFailedIndexes": 0,
                "podFailurePolicy": {"rules": [permanent]}}
    return {"backoffLimit": int((spec.get("runPolicy") or {}).get("backoffLimit", 2)),
            "podFailurePolicy": {"rules": [permanent, disrupted]}}


def local_queue(spec: Obj) -> str:
    """The Kueue LocalQueue stage Jobs are submitted to, or ""."""
    return str((spec.get("scheduling") or {}).get("localQueue") or "")


def gang_scheduled(spec: Obj) -> bool:
    """Under Volcano, multi-node training is one gang (a PodGroup)."""
    return (spec.get("scheduling") or {}).get("schedulerName") == "volcano"


def mind_cluster(spec: Obj) -> Obj:
    """spec.scheduling.mindCluster when enabled, else {}."""
    settings = (spec.get("scheduling") or {}).get("mindCluster") or {}
    return settings if settings.get("enabled") else {}


def needs_pod_group(spec: Obj, stage: str) -> bool:
    """Which stage Jobs get a PodGroup of their own: multi-node training
    under Volcano (the ranks are one gang), and in MindCluster mode every
    stage with NPUs (MindCluster's Volcano plugin reads a job's NPUs from its
    PodGroup's minResources only, and its device plugin gives NPUs only to
    pods that plugin placed)."""
    if not gang_scheduled(spec):
        return False
    return plan.is_multi_node(spec, stage) or bool(mind_cluster(spec) and plan.npus_for(spec, stage))


def mind_cluster_labels(spec: Obj) -> Dict[str, str]:
    """What MindCluster's Volcano plugin and ClusterD select on (its docs'
    job YAML): the chip family, and how a faulty pod is rescheduled."""
    settings = mind_cluster(spec)
    if not settings:
        return {}
    return {"ring-controller.atlas": settings.get("chip", "ascend-910b"),
            "fault-scheduling": settings.get("faultScheduling", "grace")}


def pod_group(body: Obj, stage: str, job: Obj) -> Obj:
    """Volcano's PodGroup of one stage's Job: no pod is bound until all
    `minMember` can be, so a half-placed run never holds NPUs idle and two
    runs never deadlock each other over the last free nodes. minResources is
    what Volcano's enqueue action checks against the queue before any pod is
    made schedulable (and where MindCluster's plugin reads the NPUs).

    Owned by the Job (controller), so each attempt of multi-node training
    gets a fresh group and MindCluster's ClusterD finds the Job from it; not
    blocking the Job's deletion, which needs no grant on jobs/finalizers.
    """
    spec, meta = _spec(body), _meta(body)
    run = meta["name"]
    members = int((spec.get("resources") or {}).get("nodes", 1)) if plan.is_multi_node(spec, stage) else 1
    per_pod = {**pod_template.merged(spec, stage)["requests"], NPU_RESOURCE: str(plan.npus_for(spec, stage))}
    min_resources = {key: _times(value, members) for key, value in per_pod.items()}
    sched = spec.get("scheduling") or {}
    group_spec: Obj = {"minMember": members, "minResources": min_resources}
    if sched.get("queue"):
        group_spec["queue"] = sched["queue"]
    if sched.get("priorityClassName"):
        group_spec["priorityClassName"] = sched["priorityClassName"]
    job_meta = job.get("metadata") or {}
    return {
        "apiVersion": names.POD_GROUP_API_VERSION, "kind": "PodGroup",
        "metadata": {"name": names.pod_group(run, stage), "namespace": meta.get("namespace"),
                     "labels": {**mind_cluster_labels(spec), **names.labels(run, stage)},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_meta.get("name"),
                                          "uid": job_meta.get("uid"), "controller": True,
                                          "blockOwnerDeletion": False}]},
        "spec": group_spec,
    }


def _times(quantity: str, factor: int) -> str:
    """A quantity times a whole number, in the same unit ("4Gi" x 2 = "8Gi", "250m" x 2 = "500m")."""
    text = str(quantity)
    number = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(number):]
    value = float(number) * factor
    return f"{int(value) if value.is_integer() else value}{unit}"
