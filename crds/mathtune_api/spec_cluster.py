"""spec.storage, spec.images, spec.scheduling and spec.runPolicy: where and how the stages run."""
from typing import Annotated, Any, Dict, List, Literal, Optional

from pydantic import Field

from .base import ApiModel, F, block
from .kube import string_map, tolerations_schema
from .schema import Raw
from .vocabulary import DNS_LABEL, PATH, SHORT, immutable, rule


class Storage(ApiModel):
    RULES = [immutable("storage")]
    pvc_name: str = F("An existing PersistentVolumeClaim to use. Empty: the operator creates <run>-work. The claim is "
                      "never deleted with the run, so its data outlives it.", "", pattern=DNS_LABEL, max_length=63)
    size: str = F("Size of the claim the operator creates.", "200Gi",
                  pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$", max_length=32)
    storage_class_name: str = F("StorageClass of the claim the operator creates; empty: the cluster default.", "",
                                max_length=SHORT)
    data_path: str = F("Mount path of the work volume in every pod; runs write under <dataPath>/runs/<run>.",
                       "/data", pattern=r"^/[^\s]*$", max_length=PATH)


class Images(ApiModel):
    pipeline: str = F("The pipeline image (mathtune-pipeline on PATH).", "mathtune/pipeline-ascend:0.1.0",
                      min_length=1, max_length=PATH)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = F("imagePullPolicy of stage containers.",
                                                                "IfNotPresent")


class MindCluster(ApiModel):
    RULES = [rule("!self.enabled || size(self.acceleratorType) > 0",
                  "spec.scheduling.mindCluster.acceleratorType is required when enabled: the node label "
                  "accelerator-type (e.g. module-910b-8) picks MindCluster's NPU handler", ".acceleratorType",
                  "FieldValueRequired")]
    enabled: bool = F("Use MindCluster's conventions.", False)
    accelerator_type: str = F("The nodes' accelerator-type label, which picks the plugin's NPU handler: e.g. "
                              "module-910b-8 (Atlas 800T A2), module-910b-16, module-a3-16, card-910b-2, module "
                              "(Atlas 800, 910).", "", pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
                              max_length=63)
    chip: Literal["ascend-910b", "ascend-910"] = F("The ring-controller.atlas label: ascend-910b for Atlas A2/A3, "
                                                   "ascend-910 for the first 910.", "ascend-910b")
    fault_scheduling: Literal["grace", "force", "off"] = F(
        "The fault-scheduling label: grace (delete a faulty pod gracefully, forcibly after 15 minutes), force, or "
        "off (no rescheduling).", "grace")


NODE_SELECTOR = string_map("Node labels every stage pod requires, merged with accelerator: huawei-Ascend910 in the "
                           "ascend profile.")


class Scheduling(ApiModel):
    RULES = [rule("size(self.queue) == 0 || self.schedulerName == 'volcano'",
                  "spec.scheduling.queue needs spec.scheduling.schedulerName: volcano", ".queue"),
             rule("size(self.localQueue) == 0 || size(self.queue) == 0",
                  "spec.scheduling.localQueue (Kueue) and spec.scheduling.queue (Volcano) are two admission queues: "
                  "set one", ".localQueue"),
             rule("!self.mindCluster.enabled || self.schedulerName == 'volcano'",
                  "spec.scheduling.mindCluster needs spec.scheduling.schedulerName: volcano (MindCluster's device "
                  "plugin gives NPUs only to pods its Volcano plugin placed)", ".mindCluster")]
    node_selector: Annotated[Optional[Dict[str, str]], Raw(NODE_SELECTOR)] = None
    tolerations: Annotated[List[Dict[str, Any]], Raw(tolerations_schema())] = Field(default_factory=list)
    priority_class_name: str = F("PriorityClass of stage pods.", "", max_length=SHORT)
    scheduler_name: str = F("Scheduler of stage pods, e.g. volcano; empty: the default scheduler.", "",
                            max_length=SHORT)
    queue: str = F("Volcano queue (pod annotation scheduling.volcano.sh/queue-name); needs schedulerName volcano.",
                   "", max_length=SHORT)
    local_queue: str = F("Kueue LocalQueue of the run's namespace: every stage Job is submitted to it (label "
                         "kueue.x-k8s.io/queue-name), made suspended, and runs when Kueue admits it; status says why "
                         "it waits. runPolicy.suspend then (de)activates the stage's Workload.", "",
                         pattern=DNS_LABEL, max_length=63)
    mind_cluster: MindCluster = block(
        "Huawei MindCluster mode (docs/stage-pods.md): for clusters whose Ascend device plugin runs with Volcano "
        "(MindCluster's ascend-volcano-plugin). NPU stages then get a PodGroup with their NPUs as minResources, the "
        "labels ring-controller.atlas and fault-scheduling, the node selector accelerator-type, and "
        "ASCEND_VISIBLE_DEVICES from Volcano's huawei.com/Ascend910 pod annotation. Off: the plain device plugin "
        "with any scheduler.", MindCluster)


class RunPolicy(ApiModel):
    suspend: bool = F("true stops the running stage's pods (its Job is suspended); false continues. Training "
                      "continues from its last complete checkpoint.", False)
    backoff_limit: int = F("Retries of a failed stage pod (Job backoffLimit, exponential backoff). Exit code 2 (bad "
                           "spec or input) is never retried.", 2, ge=0, le=20)
    active_deadline_seconds: int = F("Longest a stage may run, in seconds; 0: no limit.", 0, ge=0)
    rendezvous_timeout_seconds: int = F("Multi-node training: how long ranks wait for each other (rank 0's DNS name, "
                                        "then msrun's cluster) before the attempt fails and, while backoffLimit "
                                        "allows, every rank starts again.", 1800, ge=30, le=86400)
    ttl_seconds_after_finished: int = F("Delete the run's Jobs (and their pods) this long after the run ends; 0: "
                                        "keep them.", 0, ge=0)
