"""Kubernetes objects of a run, built as plain dicts. Pure: no API calls.

Every builder takes the run (`resource.Run`: its name, namespace, uid,
generation and typed spec) and returns the object to create. Creating them
is `children`'s job; the schedulers' objects are `schedulers`'.
"""
import json
from typing import Dict, List, Optional

from mathtune_api import NPU_RESOURCE, MathFinetuneSpec

from . import names, plan, pod_template
from .resource import Run
from .schedulers import local_queue, mind_cluster, mind_cluster_labels, needs_pod_group
from .types import Obj

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


def owner_reference(run: Run) -> Obj:
    """Children are owned by the run: deleting it garbage-collects them."""
    return {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": run.name, "uid": run.uid,
            "controller": True, "blockOwnerDeletion": True}


def spec_document(run: Run) -> Obj:
    """What stage pods read at /etc/mathtune/spec.json (docs/contract.md §1):
    the spec as the API server holds it, which each stage parses itself."""
    return {"apiVersion": names.API_VERSION, "kind": names.KIND,
            "metadata": {"name": run.name, "namespace": run.namespace, "uid": run.uid},
            "spec": run.stored_spec}


def config_map(run: Run) -> Obj:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": names.config_map(run.name), "namespace": run.namespace,
                     "labels": names.labels(run.name), "ownerReferences": [owner_reference(run)]},
        "data": {"spec.json": json.dumps(spec_document(run), indent=2, sort_keys=True)},
    }


def claim_name(run: Run) -> str:
    return run.spec.storage.pvc_name or names.claim(run.name)


def persistent_volume_claim(run: Run) -> Optional[Obj]:
    """The work volume, or None when the spec names an existing claim.

    Deliberately NOT owner-referenced: deleting a run must keep its data
    (checkpoints, adapters, reports). Delete `<run>-work` by hand when done.
    Multi-node training writes from several nodes at once: ReadWriteMany.
    """
    storage = run.spec.storage
    if storage.pvc_name:
        return None
    pvc: Obj = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": names.claim(run.name), "namespace": run.namespace, "labels": names.labels(run.name)},
        "spec": {"accessModes": ["ReadWriteMany" if run.spec.resources.nodes > 1 else "ReadWriteOnce"],
                 "resources": {"requests": {"storage": storage.size}}},
    }
    if storage.storage_class_name:
        pvc["spec"]["storageClassName"] = storage.storage_class_name
    return pvc


def headless_service(run: Run) -> Obj:
    """Stable DNS names `<job>-<index>.<svc>` for the pods of multi-node training."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": names.service(run.name), "namespace": run.namespace,
                     "labels": names.labels(run.name, "train"), "ownerReferences": [owner_reference(run)]},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {names.LABEL_RUN: run.name, names.LABEL_STAGE: "train"},
                 "ports": [{"name": "msrun", "port": names.MSRUN_PORT, "targetPort": names.MSRUN_PORT}]},
    }


def master_address(run: Run) -> str:
    """Rank 0's stable hostname. msrun needs an IP on rank 0's own interface
    (a Service ClusterIP never matches), and pod IPs are only known once pods
    run, so the train stage resolves this name to rank 0's pod IP itself
    before calling msrun (docs/contract.md §2)."""
    return f"{names.job(run.name, 'train')}-0.{names.service(run.name)}.{run.namespace}.svc"


def stage_args(run: Run, stage: str) -> List[str]:
    args = [stage, "--spec", names.SPEC_FILE, "--run-dir", names.run_dir(run.spec.storage.data_path, run.name),
            "--result-file", names.TERMINATION_LOG]
    if stage == "train":
        # A retried training pod continues from the last complete checkpoint.
        args += ["--resume", "auto"]
        if plan.is_multi_node(run.spec, stage):
            args += ["--node-rank", "$(MATHTUNE_NODE_RANK)", "--master-addr", master_address(run),
                     "--master-port", str(names.MSRUN_PORT)]
    return args


def _env(run: Run, stage: str, user: List[Obj]) -> List[Obj]:
    """The operator's variables, then the templates' (the CRD refuses a
    template variable of an operator's name)."""
    env: List[Obj] = [
        {"name": "MATHTUNE_RUN", "value": run.name},
        {"name": "MATHTUNE_STAGE", "value": stage},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # Made by the stage itself (mathtune-pipeline's entry): MindFormers'
        # mindpet refuses a $HOME its user does not own, and an emptyDir is
        # root's.
        {"name": "HOME", "value": f"{SCRATCH}/home"},
    ]
    if plan.is_multi_node(run.spec, stage):
        # Declared here (not relying on the Job controller's injection) so
        # $(MATHTUNE_NODE_RANK) in args always expands.
        env.append({"name": "MATHTUNE_NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}})
    return env + user


def _mind_cluster_env(spec: MathFinetuneSpec, npus: int) -> List[Obj]:
    """MindCluster's whole-card jobs take the chips Volcano's Ascend plugin
    chose from its pod annotation (Ascend Docker Runtime reads this variable;
    the device plugin checks this exact fieldPath); the stage then runs one
    worker per chip (mindformers/launch.local_workers)."""
    if not (npus and mind_cluster(spec)):
        return []
    return [{"name": "ASCEND_VISIBLE_DEVICES", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{NPU_RESOURCE}']"}}}]


def _tolerations(spec: MathFinetuneSpec, npus: int, template: List[Obj]) -> List[Obj]:
    """The user's, plus the NPU nodes' taint for every Ascend-profile stage
    and for any pod that asks for NPUs (a cpu-profile training pod with
    resources.requestNpusOnCpu): where the NPUs are, the taint is."""
    user = list(spec.scheduling.tolerations) + template
    if (spec.profile == "ascend" or npus) and NPU_TOLERATION not in user:
        user.append(dict(NPU_TOLERATION))
    return user


def _node_selector(spec: MathFinetuneSpec, template: Dict[str, str]) -> Dict[str, str]:
    """Ascend profile: every stage runs on Ascend nodes, NPU stages or not. The
    pipeline image is built for the Ascend servers (aarch64, CANN), and CPU
    nodes of another architecture could not run it."""
    selector = {}
    if spec.profile == "ascend":
        selector.update(NPU_NODE_LABEL)
    selector.update(spec.scheduling.node_selector or {})
    selector.update(template)
    return selector


def job(run: Run, stage: str, suspend: bool = False, attempt: int = 1) -> Obj:
    """The Job that runs one stage. `attempt` numbers the Jobs of multi-node
    training: each is one attempt of every rank (see `_retry_policy`)."""
    spec = run.spec
    sched = spec.scheduling
    npus = plan.npus_for(spec, stage)
    multi = plan.is_multi_node(spec, stage)
    labels = names.labels(run.name, stage)
    shape = pod_template.merged(spec, stage)

    mounts = [{"name": "work", "mountPath": spec.storage.data_path},
              {"name": "spec", "mountPath": names.SPEC_MOUNT, "readOnly": True},
              {"name": "shm", "mountPath": "/dev/shm"},
              {"name": "scratch", "mountPath": SCRATCH}]
    volumes = [{"name": "work", "persistentVolumeClaim": {"claimName": claim_name(run)}},
               {"name": "spec", "configMap": {"name": names.config_map(run.name)}},
               # Dataset workers share tensors through /dev/shm; the runtime's 64 MiB default is too small.
               {"name": "shm", "emptyDir": {"medium": "Memory"}},
               {"name": "scratch", "emptyDir": {}}] + shape["volumes"]
    container: Obj = {
        "name": names.CONTAINER,
        "image": spec.images.pipeline,
        "imagePullPolicy": spec.images.pull_policy,
        "command": ["mathtune-pipeline"],
        "args": stage_args(run, stage),
        "env": _env(run, stage, shape["env"] + _mind_cluster_env(spec, npus)),
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
    if spec.profile == "ascend" and npus:
        mounts.append({"name": "ascend-driver", "mountPath": ASCEND_DRIVER, "readOnly": True})
        volumes.append({"name": "ascend-driver", "hostPath": {"path": ASCEND_DRIVER, "type": "Directory"}})
    if multi:
        container["ports"] = [{"name": "msrun", "containerPort": names.MSRUN_PORT}]
    # After the operator's own, so a user's mount can never shadow them
    # (the CRD refuses their paths).
    mounts.extend(shape["volumeMounts"])

    pod_fields = {
        "restartPolicy": "Never",
        "securityContext": dict(POD_SECURITY_CONTEXT),
        "containers": [container],
        "volumes": volumes,
        "tolerations": _tolerations(spec, npus, shape["tolerations"]),
    }
    for key in ("serviceAccountName", "imagePullSecrets", "affinity"):
        if shape[key]:
            pod_fields[key] = shape[key]
    selector = _node_selector(spec, shape["nodeSelector"])
    cluster = mind_cluster(spec)
    if npus and cluster:
        # The node label that picks MindCluster's NPU handler (910B, A3...).
        selector["accelerator-type"] = cluster.accelerator_type
    if selector:
        pod_fields["nodeSelector"] = selector
    if sched.priority_class_name:
        pod_fields["priorityClassName"] = sched.priority_class_name
    if sched.scheduler_name:
        pod_fields["schedulerName"] = sched.scheduler_name
    if multi:
        pod_fields["subdomain"] = names.service(run.name)
    cluster_labels = mind_cluster_labels(spec) if npus else {}
    template_meta: Obj = {"labels": {**shape["labels"], **cluster_labels, **labels}}
    annotations = dict(shape["annotations"])
    if sched.queue:
        annotations[names.ANNOTATION_QUEUE] = sched.queue
    if needs_pod_group(spec, stage):
        annotations[names.ANNOTATION_POD_GROUP] = names.pod_group(run.name, stage)
    if annotations:
        template_meta["annotations"] = annotations

    job_labels = dict(labels)
    if local_queue(spec):
        # On the Job only: on the pods it would make them Kueue's plain pods.
        job_labels[names.LABEL_KUEUE_QUEUE] = local_queue(spec)
    job_fields = {
        # Under Kueue a Job is made suspended and Kueue admits it (unsuspends)
        # when its quota allows; the operator never unsuspends it itself.
        "suspend": bool(suspend) or bool(local_queue(spec)),
        **_retry_policy(spec, multi, attempt),
        "template": {"metadata": template_meta, "spec": pod_fields},
    }
    if spec.run_policy.active_deadline_seconds > 0:
        job_fields["activeDeadlineSeconds"] = spec.run_policy.active_deadline_seconds
    if multi:
        nodes = spec.resources.nodes
        job_fields.update({"completionMode": "Indexed", "completions": nodes, "parallelism": nodes})
    job_annotations = {"mathtune.dev/generation": str(run.generation or 1)}
    if multi or attempt > 1:
        # Single-node: a Job made after an NPU fault stopped the one before
        # (reconcile/device_fault.py) goes on counting its attempts.
        job_annotations[names.ANNOTATION_ATTEMPT] = str(attempt)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": names.job(run.name, stage), "namespace": run.namespace, "labels": job_labels,
                     "annotations": job_annotations, "ownerReferences": [owner_reference(run)]},
        "spec": job_fields,
    }


def _retry_policy(spec: MathFinetuneSpec, multi: bool, attempt: int = 1) -> Obj:
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
    # The attempts earlier Jobs of the stage used count against the limit.
    return {"backoffLimit": max(0, spec.run_policy.backoff_limit - (attempt - 1)),
            "podFailurePolicy": {"rules": [permanent, disrupted]}}
