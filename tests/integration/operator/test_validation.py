"""The API server itself rejects bad MathFinetunes (CRD schema + CEL rules),
with a message that names the field; and rejects changes to fields that may
not change once a run exists."""
import json

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from tests import examples

from . import helpers as h

pytestmark = pytest.mark.integration


def _set(doc, dotted, value):
    node = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


_DELETE = object()

# (case id, dotted path to change, new value, text the error must contain)
CASES = [
    ("bad-family", "spec.model.family", "gpt-4", "spec.model.family"),
    ("bad-profile", "spec.profile", "gpu", "spec.profile"),
    ("npus-3", "spec.resources.npusPerNode", 3, "spec.resources.npusPerNode"),
    ("nodes-0", "spec.resources.nodes", 0, "spec.resources.nodes"),
    ("parallel-product", "spec.resources.parallel.dataParallel", 3, "spec.resources.parallel"),
    ("rank-0", "spec.lora.rank", 0, "spec.lora.rank"),
    ("dropout-1", "spec.lora.dropout", 1.0, "spec.lora.dropout"),
    ("alpha-0", "spec.lora.alpha", 0, "spec.lora.alpha"),
    ("no-target-modules", "spec.lora.targetModules", [], "spec.lora.targetModules"),
    ("bad-target-module", "spec.lora.targetModules", ["w q"], "spec.lora.targetModules"),
    ("epochs-0", "spec.training.epochs", 0, "spec.training.epochs"),
    ("lr-end-above-lr", "spec.training.lrSchedule.lrEnd", 0.5, "spec.training.lrSchedule.lrEnd"),
    ("ckpt-both", "spec.training.checkpoint.saveSteps", 100, "spec.training.checkpoint"),
    ("bad-memory", "spec.training.maxDeviceMemory", "lots", "spec.training.maxDeviceMemory"),
    ("bad-optimizer", "spec.training.optimizer.type", "SGD", "spec.training.optimizer.type"),
    ("no-source-uri", "spec.data.source.uri", "", "spec.data.source.uri"),
    ("bad-format", "spec.data.source.format", "parquet", "spec.data.source.format"),
    ("bad-sha", "spec.data.source.sha256", "abc", "spec.data.source.sha256"),
    ("quota-without-quotas", "spec.data.sample.mode", "quota", "spec.data.sample.quotas"),
    ("fraction-above-1", "spec.data.sample.fraction", 1.5, "spec.data.sample.fraction"),
    ("seq-length-word", "spec.data.seqLength", "long", "spec.data.seqLength"),
    ("seq-length-small", "spec.data.seqLength", 4, "spec.data.seqLength"),
    ("bad-template", "spec.data.template.name", "chatml", "spec.data.template.name"),
    ("packed-batching", "spec.data.batching.mode", "packed", "spec.data.batching.mode"),
    ("bucket-multiple-3", "spec.data.batching.multiple", 3, "spec.data.batching.multiple"),
    ("seq-not-bucket-multiple", "spec.data.seqLength", 100, "spec.data.seqLength must be a multiple of"),
    ("rule-without-matcher", "spec.data.classify.extraRules", [{"type": "my_type"}], "spec.data.classify.extraRules"),
    ("gate-relative-above-1", "spec.evaluation.gate.f1", 53.88, "spec.evaluation.gate"),
    ("eval-without-dataset", "spec.evaluation.dataset.uri", "", "spec.evaluation.dataset.uri"),
    ("eval-epoch-beyond", "spec.evaluation.epochs", [99], "spec.evaluation.epochs"),
    ("no-prediction", "spec.prediction", _DELETE, "spec.prediction"),
    # spec.data.mix: a source each, share or count, shares below 1; spec.data.leakage's values.
    ("mix-without-source", "spec.data.mix", [{"share": 0.1}], "spec.data.mix[0].source"),
    ("mix-without-uri", "spec.data.mix", [{"source": {"uri": ""}, "share": 0.1}], "spec.data.mix[0].source.uri"),
    ("mix-share-and-count", "spec.data.mix", [{"source": {"uri": "/data/r.jsonl"}, "share": 0.1, "count": 5}],
     "spec.data.mix[]: give exactly one of share and count"),
    ("mix-neither-share-nor-count", "spec.data.mix", [{"source": {"uri": "/data/r.jsonl"}}],
     "spec.data.mix[]: give exactly one of share and count"),
    ("mix-shares-reach-one", "spec.data.mix", [{"source": {"uri": "/data/a.jsonl"}, "share": 0.6},
                                               {"source": {"uri": "/data/b.jsonl"}, "share": 0.4}],
     "spec.data.mix: the shares must add up to less than 1"),
    ("mix-share-one", "spec.data.mix", [{"source": {"uri": "/data/a.jsonl"}, "share": 1.0}], "spec.data.mix[0].share"),
    ("mix-bad-format", "spec.data.mix", [{"source": {"uri": "/data/a.csv", "format": "mmlu-csv"}, "count": 5}],
     "spec.data.mix[0].source.format"),
    ("bad-leakage", "spec.data.leakage", "ignore", "spec.data.leakage"),
    ("queue-without-volcano", "spec.scheduling.queue", "research", "spec.scheduling.queue"),
    ("bad-pvc-name", "spec.storage.pvcName", "Not_A_Name", "spec.storage.pvcName"),
    ("relative-data-path", "spec.storage.dataPath", "data", "spec.storage.dataPath"),
    ("backoff-too-high", "spec.runPolicy.backoffLimit", 100, "spec.runPolicy.backoffLimit"),
    ("negative-deadline", "spec.runPolicy.activeDeadlineSeconds", -1, "spec.runPolicy.activeDeadlineSeconds"),
    ("tiny-on-ascend", "spec.profile", "ascend", "spec.model.family"),
    ("cpu-model-parallel", "spec.resources.parallel", {"dataParallel": 1, "modelParallel": 2}, "spec.resources.parallel"),
    ("tiny-heads", "spec.model.tiny.numHeads", 3, "spec.model.tiny.hiddenSize"),
    ("long-name", "metadata.name", "a" * 41, "metadata.name"),
    ("unknown-field", "spec.lora.rnak", 8, "rnak"),
    ("mindcluster-without-volcano", "spec.scheduling.mindCluster", {"enabled": True, "acceleratorType": "module-910b-8"},
     "spec.scheduling.mindCluster needs spec.scheduling.schedulerName: volcano"),
    ("mindcluster-no-accelerator-type", "spec.scheduling", {"schedulerName": "volcano", "mindCluster": {"enabled": True}},
     "spec.scheduling.mindCluster.acceleratorType is required"),
    ("two-queues", "spec.scheduling", {"schedulerName": "volcano", "queue": "research", "localQueue": "npu"},
     "spec.scheduling.localQueue (Kueue) and spec.scheduling.queue (Volcano)"),
    ("rendezvous-too-short", "spec.runPolicy.rendezvousTimeoutSeconds", 5, "spec.runPolicy.rendezvousTimeoutSeconds"),
    # Pod templates (spec.podTemplates): checked at admission like the rest.
    ("template-reserved-env", "spec.podTemplates", [{"env": [{"name": "MATHTUNE_RUN", "value": "x"}]}],
     "spec.podTemplates[].env[].name: MATHTUNE_*"),
    ("template-env-value-and-from", "spec.podTemplates", [{"env": [
        {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
     "spec.podTemplates[].env[]: give value or valueFrom"),
    ("template-env-from-both", "spec.podTemplates", [{"envFrom": [
        {"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}]}], "spec.podTemplates[].envFrom[]"),
    ("template-npus", "spec.podTemplates", [{"resources": {"limits": {"huawei.com/Ascend910": 8}}}],
     "spec.podTemplates[].resources: huawei.com/Ascend910"),
    ("template-bad-quantity", "spec.podTemplates", [{"resources": {"requests": {"memory": "lots"}}}],
     "spec.podTemplates[0].resources.requests.memory"),
    ("template-bad-stage", "spec.podTemplates", [{"stages": ["training"]}], "spec.podTemplates[0].stages[0]"),
    ("template-mount-no-volume", "spec.podTemplates", [{"stages": ["train"], "volumeMounts": [
        {"name": "cache", "mountPath": "/cache"}]}], "spec.podTemplates[].volumeMounts[].name"),
    ("template-volume-two-sources", "spec.podTemplates", [{"volumes": [
        {"name": "v", "emptyDir": {}, "hostPath": {"path": "/opt"}}]}], "spec.podTemplates[].volumes[]: give exactly one"),
    ("template-operator-volume", "spec.podTemplates", [{"volumes": [{"name": "work", "emptyDir": {}}]}],
     "spec.podTemplates[].volumes[].name"),
    ("template-operator-mount", "spec.podTemplates", [{"volumes": [{"name": "v", "emptyDir": {}}],
                                                       "volumeMounts": [{"name": "v", "mountPath": "/tmp"}]}],
     "spec.podTemplates[].volumeMounts[].mountPath"),
    ("template-operator-label", "spec.podTemplates", [{"labels": {"mathtune.dev/run": "other"}}],
     "spec.podTemplates[].labels"),
    ("template-duplicate-env", "spec.podTemplates", [{"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}],
     "spec.podTemplates[0].env[1]"),
    ("template-bad-affinity", "spec.podTemplates", [{"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "Near"}]}]}}}}],
     "spec.podTemplates[0].affinity.nodeAffinity"),
]

# A template using every field: what the API server must accept.
FULL_TEMPLATES = [
    {"envFrom": [{"secretRef": {"name": "s3-credentials"}}],
     "env": [{"name": "AWS_DEFAULT_REGION", "value": "cn-southwest-2"},
             {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
     "serviceAccountName": "mathtune-stages", "imagePullSecrets": [{"name": "registry"}],
     "labels": {"team": "math"}, "annotations": {"example.com/cost-center": "42"}},
    {"stages": ["train"], "labels": {"ring-controller.atlas": "ascend-910b"},
     "resources": {"requests": {"cpu": 32, "memory": "256Gi"}, "limits": {"memory": "512Gi"}},
     "nodeSelector": {"node.kubernetes.io/npu.chip.name": "910B"},
     "tolerations": [{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}],
     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
         "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
             "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"team": "math"}}}}]}},
     "volumes": [{"name": "add-ons", "hostPath": {"path": "/usr/local/Ascend/add-ons", "type": "Directory"}},
                 {"name": "big-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}},
                 {"name": "shared", "nfs": {"server": "10.0.0.5", "path": "/exports/models", "readOnly": True}}],
     "volumeMounts": [{"name": "add-ons", "mountPath": "/usr/local/Ascend/add-ons", "readOnly": True},
                      {"name": "shared", "mountPath": "/models"}]},
    {"stages": ["merge", "evaluate"], "resources": {"requests": {"memory": "64Gi"}}},
]


def test_bucketed_batching_with_lora_on_wo_is_rejected(namespace, apis, crd):
    doc = h.run_doc("run-cpu.yaml", "bad-bucketed-wo")
    doc["spec"]["data"]["batching"] = {"mode": "bucketed"}
    doc["spec"]["lora"]["targetModules"] = ["wq", "wo"]
    with pytest.raises(ApiException) as info:
        apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc)
    assert info.value.status == 422 and "spec.data.batching.mode: bucketed cannot train LoRA on wo" in \
        json.loads(info.value.body)["message"]
    doc["spec"]["data"]["batching"] = {"mode": "auto"}
    apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc)


@pytest.mark.parametrize("case,path,value,needle", CASES, ids=[c[0] for c in CASES])
def test_invalid_resource_is_rejected_naming_the_field(case, path, value, needle, namespace, apis, crd):
    doc = h.run_doc("run-cpu.yaml", f"bad-{case}"[:40])
    _set(doc, path, value)
    with pytest.raises(ApiException) as info:
        # fieldValidation=Strict: unknown fields are errors, not silently dropped.
        apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc,
                                                       field_validation="Strict")
    exc = info.value
    assert exc.status == 422 or (exc.status == 400 and case == "unknown-field"), (exc.status, exc.body)
    message = json.loads(exc.body)["message"]
    assert needle in message, message


def test_the_valid_base_is_accepted(namespace, apis, crd):
    """Every rejection above is due to its one change: the base passes."""
    doc = h.run_doc("run-cpu.yaml", "good")
    apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc, dry_run="All")


@pytest.mark.parametrize("example", [p.name for p in examples.RUNS + examples.SWEEPS])
def test_every_example_is_accepted(example, namespace, apis, crd):
    doc = yaml.safe_load((h.EXAMPLES / example).read_text())
    plural = h.PLURAL if doc["kind"] == "MathFinetune" else "mathfinetunesweeps"
    apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, plural, doc, dry_run="All",
                                                   field_validation="Strict")


def test_pod_templates_using_every_field_are_accepted(namespace, apis, crd):
    doc = h.run_doc("run-cpu.yaml", "templates")
    doc["spec"]["podTemplates"] = FULL_TEMPLATES
    out = apis["custom"].create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc,
                                                         field_validation="Strict")
    assert out["spec"]["podTemplates"] == FULL_TEMPLATES


@pytest.mark.parametrize("path,value", [
    ("spec.lora.rank", 4),
    ("spec.training.epochs", 99),
    ("spec.data.source.uri", "/data/other.jsonl"),
    ("spec.resources.npusPerNode", 1),
    ("spec.storage.size", "2Gi"),
    ("spec.profile", "ascend"),
], ids=["lora", "training", "data", "resources", "storage", "profile"])
def test_changes_to_results_defining_fields_are_rejected_after_creation(path, value, namespace, apis, crd):
    custom = apis["custom"]
    h.create_run(custom, namespace, h.run_doc("run-cpu.yaml", "fixed"))
    patch = {}
    _set(patch, path, value)
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, "fixed", patch)
    message = json.loads(info.value.body)["message"]
    top = path.split(".")[1]
    assert f"spec.{top}" in message and "immutable" in message, message


def test_changes_to_scheduling_images_and_run_policy_are_accepted(namespace, apis, crd):
    custom = apis["custom"]
    h.create_run(custom, namespace, h.run_doc("run-cpu.yaml", "mutable"))
    out = custom.patch_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, "mutable", {"spec": {
        "images": {"pipeline": "mathtune/pipeline-cpu:0.2.0"},
        "scheduling": {"priorityClassName": "high"},
        "runPolicy": {"backoffLimit": 4, "suspend": True}}})
    assert out["spec"]["runPolicy"]["backoffLimit"] == 4 and out["spec"]["images"]["pipeline"].endswith("0.2.0")
    # The spec is the example's, with the API server's defaults applied.
    example = yaml.safe_load((h.EXAMPLES / "run-cpu.yaml").read_text())["spec"]
    assert out["spec"]["lora"]["targetModules"] == example["lora"]["targetModules"]
    assert out["spec"]["storage"]["dataPath"] == "/data"  # a default, not in the example
