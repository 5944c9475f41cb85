"""How stage Jobs meet the cluster's schedulers: Kueue's LocalQueue, Volcano's
PodGroup (gang) and MindCluster's labels. Pure: spec in, dicts out."""
from typing import Dict, Optional

from mathtune_api import NPU_RESOURCE, MathFinetuneSpec
from mathtune_api.spec_cluster import MindCluster

from . import names, plan, pod_template
from .resource import Run
from .types import Obj


def local_queue(spec: MathFinetuneSpec) -> str:
    """The Kueue LocalQueue stage Jobs are submitted to, or ""."""
    return spec.scheduling.local_queue


def gang_scheduled(spec: MathFinetuneSpec) -> bool:
    """Under Volcano, multi-node training is one gang (a PodGroup)."""
    return spec.scheduling.scheduler_name == "volcano"


def mind_cluster(spec: MathFinetuneSpec) -> Optional[MindCluster]:
    """spec.scheduling.mindCluster when enabled, else None."""
    settings = spec.scheduling.mind_cluster
    return settings if settings.enabled else None


def needs_pod_group(spec: MathFinetuneSpec, stage: str) -> bool:
    """Which stage Jobs get a PodGroup of their own: multi-node training
    under Volcano (the ranks are one gang), and in MindCluster mode every
    stage with NPUs (MindCluster's Volcano plugin reads a job's NPUs from its
    PodGroup's minResources only, and its device plugin gives NPUs only to
    pods that plugin placed)."""
    if not gang_scheduled(spec):
        return False
    return plan.is_multi_node(spec, stage) or bool(mind_cluster(spec) and plan.npus_for(spec, stage))


def mind_cluster_labels(spec: MathFinetuneSpec) -> Dict[str, str]:
    """What MindCluster's Volcano plugin and ClusterD select on (its docs'
    job YAML): the chip family, and how a faulty pod is rescheduled."""
    settings = mind_cluster(spec)
    if settings is None:
        return {}
    return {"ring-controller.atlas": settings.chip, "fault-scheduling": settings.fault_scheduling}


def pod_group(run: Run, stage: str, job: Obj) -> Obj:
    """Volcano's PodGroup of one stage's Job: no pod is bound until all
    `minMember` can be, so a half-placed run never holds NPUs idle and two
    runs never deadlock each other over the last free nodes. minResources is
    what Volcano's enqueue action checks against the queue before any pod is
    made schedulable (and where MindCluster's plugin reads the NPUs).

    Owned by the Job (controller), so each attempt of multi-node training
    gets a fresh group and MindCluster's ClusterD finds the Job from it; not
    blocking the Job's deletion, which needs no grant on jobs/finalizers.
    """
    spec = run.spec
    members = spec.resources.nodes if plan.is_multi_node(spec, stage) else 1
    per_pod = {**pod_template.merged(spec, stage)["requests"], NPU_RESOURCE: str(plan.npus_for(spec, stage))}
    min_resources = {key: _times(value, members) for key, value in per_pod.items()}
    group_fields: Obj = {"minMember": members, "minResources": min_resources}
    if spec.scheduling.queue:
        group_fields["queue"] = spec.scheduling.queue
    if spec.scheduling.priority_class_name:
        group_fields["priorityClassName"] = spec.scheduling.priority_class_name
    job_meta = job.get("metadata") or {}
    return {
        "apiVersion": names.POD_GROUP_API_VERSION, "kind": "PodGroup",
        "metadata": {"name": names.pod_group(run.name, stage), "namespace": run.namespace,
                     "labels": {**mind_cluster_labels(spec), **names.labels(run.name, stage)},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_meta.get("name"),
                                          "uid": job_meta.get("uid"), "controller": True,
                                          "blockOwnerDeletion": False}]},
        "spec": group_fields,
    }


def _times(quantity: str, factor: int) -> str:
    """A quantity times a whole number, in the same unit ("4Gi" x 2 = "8Gi", "250m" x 2 = "500m")."""
    text = str(quantity)
    number = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(number):]
    value = float(number) * factor
    return f"{int(value) if value.is_integer() else value}{unit}"
