"""Writes crds/mathtune.dev_mathfinetunes.yaml, the MathFinetune CRD.

The schema is written here in Python because every field needs a type, a
default, bounds and a description that `kubectl explain` shows; helpers keep
that readable. The YAML next to this file is the one source of truth that the
API server, the chart and the pipeline's defaults test read; a unit test
(tests/unit/operator/test_crd.py) fails when the two drift apart.

    python crds/generate.py            # rewrite the YAML
    python crds/generate.py --check    # exit 1 when the YAML is stale
"""
import json
import pprint
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crds" / "mathtune.dev_mathfinetunes.yaml"
# What is generated from this one definition, beside the CRD itself.
CHART_COPY = REPO / "charts" / "mathtune-operator" / "crds" / "mathtune.dev_mathfinetunes.yaml"
PIPELINE_DEFAULTS = REPO / "pipeline" / "mathtune_pipeline" / "spec_defaults.py"

# Bounds on every string and list keep the CEL cost estimate of the
# immutability rules (`self == oldSelf`) under the API server's budget.
SHORT, PATH, LONG = 253, 1024, 4096


def s(desc, default=None, enum=None, pattern=None, max_length=SHORT, min_length=None):
    out = {"type": "string", "description": desc, "maxLength": max_length}
    if enum is not None:
        out["enum"] = enum
        out.pop("maxLength")
    if pattern:
        out["pattern"] = pattern
    if min_length is not None:
        out["minLength"] = min_length
    if default is not None:
        out["default"] = default
    return out


def i(desc, default=None, minimum=None, maximum=None, enum=None):
    out = {"type": "integer", "description": desc}
    if default is not None:
        out["default"] = default
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    if enum is not None:
        out["enum"] = enum
    return out


def n(desc, default=None, minimum=None, maximum=None, exclusive_min=False, exclusive_max=False):
    out = {"type": "number", "description": desc}
    if default is not None:
        out["default"] = default
    if minimum is not None:
        out["minimum"] = minimum
        if exclusive_min:
            out["exclusiveMinimum"] = True
    if maximum is not None:
        out["maximum"] = maximum
        if exclusive_max:
            out["exclusiveMaximum"] = True
    return out


def b(desc, default=None):
    out = {"type": "boolean", "description": desc}
    if default is not None:
        out["default"] = default
    return out


def obj(desc, props, required=None, rules=None, default=True):
    out = {"type": "object", "description": desc, "properties": props}
    if required:
        out["required"] = required
    if rules:
        out["x-kubernetes-validations"] = rules
    if default:
        # `default: {}` makes the API server fill the nested defaults even
        # when the user leaves the whole block out.
        out["default"] = {}
    return out


def arr(desc, items, default=None, max_items=64, list_type=None, min_items=None):
    out = {"type": "array", "description": desc, "items": items, "maxItems": max_items}
    if default is not None:
        out["default"] = default
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if min_items is not None:
        out["minItems"] = min_items
    return out


def smap(desc, values, max_props=64):
    return {"type": "object", "description": desc, "additionalProperties": values, "maxProperties": max_props}


def rule(expr, message, field_path=None, reason=None):
    out = {"rule": expr, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def immutable(field):
    return rule("self == oldSelf",
                f"spec.{field} is immutable once the run exists: its stages' outputs depend on it; "
                f"create a new MathFinetune instead")


URI = ("Where to read it: a path on the work volume (absolute, or relative to storage.dataPath), "
       "http(s)://, or s3:// (S3/OBS credentials come from the pipeline pod's environment).")
DNS_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
TYPE_NAME = r"^[a-z][a-z0-9_]*$"


STAGES = ("prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export")
# Set by the operator on every stage container (builders._env): a user's
# env of the same name would be silently shadowed or break the stage.
RESERVED_ENV = ("POD_NAME", "POD_IP", "HOME", "PYTHONUNBUFFERED")
# The operator's own volumes and where they are mounted (builders.job).
RESERVED_VOLUMES = ("work", "spec", "shm", "scratch", "ascend-driver")
RESERVED_MOUNTS = ("/etc/mathtune", "/dev/shm", "/tmp", "/usr/local/Ascend/driver")
NPU_RESOURCE = "huawei.com/Ascend910"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def quantity(desc):
    """A resource quantity as core/v1 writes it: 4, "500m", "64Gi"."""
    return {"description": desc, "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                       r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}


def ref(desc, name_desc, key=False):
    props = {"name": s(name_desc, pattern=DNS_SUBDOMAIN, min_length=1)}
    if key:
        props["key"] = s("The key to read.", min_length=1)
    props["optional"] = b("Start the pod even when it (or the key) is missing.")
    return obj(desc, props, required=["name"] + (["key"] if key else []), default=False)


def label_selector():
    expression = obj("A label selector requirement.", {
        "key": s("The label key to test.", min_length=1),
        "operator": s("In, NotIn, Exists or DoesNotExist.", enum=["In", "NotIn", "Exists", "DoesNotExist"]),
        "values": arr("The values to compare with (In, NotIn).", s("A label value.", max_length=63), max_items=32),
    }, required=["key", "operator"], default=False)
    return obj("A label selector (metav1.LabelSelector).", {
        "matchLabels": smap("Labels the pods must carry.", {"type": "string", "maxLength": 63,
                                                             "description": "Label value."}, max_props=16),
        "matchExpressions": arr("Requirements, ANDed.", expression, max_items=16),
    }, default=False)


def affinity_schema():
    """core/v1 Affinity, spelled out so the API server checks it at admission
    (the CRD is structural: no field is passed through unchecked)."""
    requirement = obj("A node selector requirement.", {
        "key": s("Node label (matchExpressions) or field (matchFields: metadata.name).", min_length=1),
        "operator": s("In, NotIn, Exists, DoesNotExist, Gt or Lt.",
                      enum=["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
        "values": arr("The values to compare with.", s("A value to compare with.", max_length=63), max_items=32),
    }, required=["key", "operator"], default=False)
    term = obj("A node selector term: its requirements are ANDed.", {
        "matchExpressions": arr("Requirements on node labels.", requirement, max_items=16),
        "matchFields": arr("Requirements on node fields.", requirement, max_items=4),
    }, default=False)
    pod_term = obj("Pods (by label) near which this pod must, or must not, run.", {
        "labelSelector": label_selector(),
        "namespaceSelector": label_selector(),
        "namespaces": arr("Namespaces of those pods; empty: this run's.", s("A namespace.", max_length=63),
                          max_items=16),
        "topologyKey": s("The node label that defines 'near' (e.g. kubernetes.io/hostname).", min_length=1),
    }, required=["topologyKey"], default=False)

    def weighted(desc, field, inner):
        return obj(desc, {"weight": i("Weight, 1-100.", minimum=1, maximum=100), field: inner},
                   required=["weight", field], default=False)

    def pod_affinity(desc):
        return obj(desc, {
            "requiredDuringSchedulingIgnoredDuringExecution": arr("Hard rules.", pod_term, max_items=8),
            "preferredDuringSchedulingIgnoredDuringExecution": arr(
                "Soft rules.", weighted("A weighted pod affinity term.", "podAffinityTerm", pod_term), max_items=8),
        }, default=False)

    return obj("Affinity of the stage pods (core/v1 Affinity): node affinity, pod affinity and anti-affinity.", {
        "nodeAffinity": obj("Node affinity.", {
            "requiredDuringSchedulingIgnoredDuringExecution": obj("Hard rule: one of the terms must match.", {
                "nodeSelectorTerms": arr("Terms, ORed.", term, max_items=8, min_items=1),
            }, required=["nodeSelectorTerms"], default=False),
            "preferredDuringSchedulingIgnoredDuringExecution": arr(
                "Soft rules.", weighted("A weighted node selector term.", "preference", term), max_items=8),
        }, default=False),
        "podAffinity": pod_affinity("Pod affinity."),
        "podAntiAffinity": pod_affinity("Pod anti-affinity."),
    }, default=False)


def volume_schema(path):
    """A volume of the stage pods: the sources people mount on Ascend
    clusters (host paths such as the driver, memory-backed emptyDirs,
    claims, NFS, Secrets and ConfigMaps), exactly one per volume."""
    sources = {
        "hostPath": obj("A directory or file of the node.", {
            "path": s("Path on the node.", pattern=r"^/", min_length=1, max_length=PATH),
            "type": s("What must be there.", "", enum=["", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                                      "File", "Socket", "CharDevice", "BlockDevice"]),
        }, required=["path"], default=False),
        "emptyDir": obj("A scratch directory for the pod's life.", {
            "medium": s("Empty: the node's disk; Memory: tmpfs.", "", enum=["", "Memory"]),
            "sizeLimit": quantity("Most it may hold."),
        }, default=False),
        "persistentVolumeClaim": obj("A claim in the run's namespace.", {
            "claimName": s("The claim to mount.", pattern=DNS_SUBDOMAIN, min_length=1),
            "readOnly": b("Mount read-only."),
        }, required=["claimName"], default=False),
        "nfs": obj("An NFS export.", {
            "server": s("Server host name or IP.", min_length=1),
            "path": s("Exported path.", pattern=r"^/", min_length=1, max_length=PATH),
            "readOnly": b("Mount read-only."),
        }, required=["server", "path"], default=False),
        "secret": obj("A Secret's keys as files.", {
            "secretName": s("The Secret.", pattern=DNS_SUBDOMAIN, min_length=1),
            "defaultMode": i("File mode (octal 0400 is 256).", minimum=0, maximum=511),
            "optional": b("Start the pod even when the Secret is missing."),
        }, required=["secretName"], default=False),
        "configMap": obj("A ConfigMap's keys as files.", {
            "name": s("The ConfigMap.", pattern=DNS_SUBDOMAIN, min_length=1),
            "defaultMode": i("File mode (octal 0644 is 420).", minimum=0, maximum=511),
            "optional": b("Start the pod even when the ConfigMap is missing."),
        }, required=["name"], default=False),
    }
    count = " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in sources)
    reserved = ", ".join(f"'{v}'" for v in RESERVED_VOLUMES)
    return obj("A volume (core/v1 Volume, these sources).", {
        "name": s("Volume name, referred to by volumeMounts.", pattern=DNS_LABEL, min_length=1, max_length=63),
        **sources,
    }, required=["name"], default=False, rules=[
        rule(f"{count} == 1", f"{path}[]: give exactly one source: " + ", ".join(sources)),
        rule(f"!(self.name in [{reserved}])",
             f"{path}[].name: {', '.join(RESERVED_VOLUMES)} are the operator's own", ".name"),
    ])


def pod_template_schema(toleration, path):
    env_var = obj("An environment variable (core/v1 EnvVar).", {
        "name": s("Variable name.", pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", min_length=1),
        "value": s("The variable's value.", max_length=LONG),
        "valueFrom": obj("Where its value comes from (exactly one).", {
            "secretKeyRef": ref("A key of a Secret.", "The Secret.", key=True),
            "configMapKeyRef": ref("A key of a ConfigMap.", "The ConfigMap.", key=True),
            "fieldRef": obj("A field of the pod.", {
                "fieldPath": s("e.g. metadata.name, spec.nodeName, status.hostIP.", min_length=1),
                "apiVersion": s("Schema version of fieldPath; v1.", max_length=63),
            }, required=["fieldPath"], default=False),
        }, default=False, rules=[rule("(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + "
                                      "(has(self.fieldRef) ? 1 : 0) == 1",
                                      f"{path}.env[].valueFrom: give exactly one of secretKeyRef, configMapKeyRef, fieldRef")]),
    }, required=["name"], default=False, rules=[
        rule("!(has(self.value) && has(self.valueFrom))", f"{path}.env[]: give value or valueFrom, not both"),
        rule(f"!self.name.startsWith('MATHTUNE_') && !(self.name in [{', '.join(repr(v) for v in RESERVED_ENV)}])",
             f"{path}.env[].name: MATHTUNE_* and {', '.join(RESERVED_ENV)} are set by the operator", ".name"),
    ])
    env_from = obj("Every key of a Secret or ConfigMap as variables (core/v1 EnvFromSource).", {
        "prefix": s("Prepended to every variable name.", max_length=63),
        "secretRef": ref("The Secret.", "The Secret."),
        "configMapRef": ref("The ConfigMap.", "The ConfigMap."),
    }, default=False, rules=[rule("(has(self.secretRef) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) == 1",
                                  f"{path}.envFrom[]: give exactly one of secretRef, configMapRef")])
    amounts = {"type": "object", "maxProperties": 16, "additionalProperties": quantity("A quantity."),
               "x-kubernetes-validations": [rule(f"!('{NPU_RESOURCE}' in self)",
                                                 f"{path}.resources: {NPU_RESOURCE} is not set here: training asks for "
                                                 "spec.resources.npusPerNode, evaluate and predict for one")]}
    resources = obj("CPU, memory and other resources of the stage container, over the operator's defaults "
                    "(docs/pod-template.md), key by key.", {
        "requests": dict(amounts, description="What the scheduler reserves, e.g. {cpu: 8, memory: 64Gi}."),
        "limits": dict(amounts, description="The most the container may use; memory above it is an OOM kill."),
    }, default=False)
    mount = obj("Where a volume is mounted in the stage container (core/v1 VolumeMount).", {
        "name": s("A volume of this template, or of a template without stages.", pattern=DNS_LABEL, min_length=1,
                  max_length=63),
        "mountPath": s("Path in the container.", pattern=r"^/", min_length=1, max_length=PATH),
        "subPath": s("A path inside the volume.", max_length=PATH),
        "readOnly": b("Mount read-only."),
    }, required=["name", "mountPath"], default=False, rules=[
        rule(f"!(self.mountPath in [{', '.join(repr(v) for v in RESERVED_MOUNTS)}])",
             f"{path}.volumeMounts[].mountPath: {', '.join(RESERVED_MOUNTS)} are mounted by the operator",
             ".mountPath"),
    ])
    labels_rule = rule("self.all(k, k.matches('" + QUALIFIED_NAME + "') && !k.startsWith('mathtune.dev/'))",
                       f"{path}.labels and .annotations: keys must be qualified names (prefix/name), and "
                       "mathtune.dev/ keys are the operator's")
    string_map = {"type": "string", "maxLength": 63, "description": "A label value."}
    return obj("A template of stage pods: what they get beside what the operator sets.", {
        "env": arr("Environment variables (e.g. S3/OBS credentials from a Secret).", env_var, max_items=64,
                   list_type="map") | {"x-kubernetes-list-map-keys": ["name"]},
        "envFrom": arr("Whole Secrets or ConfigMaps as variables (e.g. AWS_ACCESS_KEY_ID, "
                       "AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL for s3:// sources).", env_from, max_items=16),
        "serviceAccountName": s("ServiceAccount of the pods; empty: the namespace's default.", pattern=DNS_SUBDOMAIN),
        "imagePullSecrets": arr("Secrets for pulling the pipeline image from a private registry.",
                                obj("A Secret of type kubernetes.io/dockerconfigjson.", {
                                    "name": s("The Secret.", pattern=DNS_SUBDOMAIN, min_length=1)},
                                    required=["name"], default=False),
                                max_items=8, list_type="map") | {"x-kubernetes-list-map-keys": ["name"]},
        "resources": resources,
        "labels": dict(smap("Pod labels (e.g. MindCluster's ring-controller.atlas).", string_map, max_props=32),
                       **{"x-kubernetes-validations": [labels_rule]}),
        "annotations": dict(smap("Pod annotations.", {"type": "string", "maxLength": LONG, "description": "An annotation value."},
                                 max_props=32), **{"x-kubernetes-validations": [labels_rule]}),
        "nodeSelector": smap("Node labels the pods require, over spec.scheduling.nodeSelector.", string_map,
                             max_props=32),
        "tolerations": arr("Tolerations, added to spec.scheduling.tolerations.", toleration, max_items=16),
        "affinity": affinity_schema(),
        "volumes": arr("Extra volumes (e.g. a host's /usr/local/Ascend/add-ons).", volume_schema(f"{path}.volumes"), max_items=16,
                       list_type="map") | {"x-kubernetes-list-map-keys": ["name"]},
        "volumeMounts": arr("Where the stage container mounts them.", mount, max_items=16),
    }, default=False)


def pod_templates_schema(toleration):
    path = "spec.podTemplates[]"
    template = pod_template_schema(toleration, path)
    template["properties"] = {"stages": arr(
        "The stages this template applies to; empty: every stage.",
        s("A stage of the run.", enum=list(STAGES)), max_items=len(STAGES), list_type="set"), **template["properties"]}
    no_stages = "(!has(u.stages) || size(u.stages) == 0)"
    return arr(
        "How the stage pods are shaped beyond what the operator sets, as templates applied in order: one without "
        "`stages` applies to every stage, later ones over earlier (env, labels, annotations and nodeSelector by "
        "key; lists appended; resources key by key, over the operator's per-stage defaults). Changes apply to "
        "stages that have not started yet.", template, max_items=8) | {"x-kubernetes-validations": [rule(
            "self.all(t, !has(t.volumeMounts) || t.volumeMounts.all(m, "
            "(has(t.volumes) && t.volumes.exists(v, v.name == m.name)) || "
            f"self.exists(u, {no_stages} && has(u.volumes) && u.volumes.exists(v, v.name == m.name))))",
            f"{path}.volumeMounts[].name: a volume of the same template, or of a template without stages "
            "(those apply to every stage)")]}


def spec_schema():
    model = obj("The base model to fine-tune and where its weights and tokenizer come from.", {
        "family": s("Model family. llama3-8b (seeds 000, 001, 003), internlm-7b (seed 002), llama-7b "
                    "(seed 004) run on Ascend with MindFormers; tiny-llama is a small randomly initialised "
                    "Llama built from `tiny`, for the cpu profile.",
                    "llama3-8b", enum=["llama3-8b", "internlm-7b", "llama-7b", "tiny-llama"]),
        "checkpoint": s("The base model's weights: a MindSpore checkpoint (.ckpt), a .safetensors file, or a "
                        "directory of safetensors shards; Hugging Face Llama names are converted with "
                        "MindFormers' converter, once per volume. " + URI
                        + " Required for every family except tiny-llama.", "", max_length=PATH),
        "checkpointSha256": s("Optional SHA-256 of the checkpoint file, verified after download (or before use, "
                              "for a file on the volume).", "", pattern=r"^([0-9a-f]{64})?$", max_length=64),
        "tokenizer": obj("The tokenizer matching the checkpoint.", {
            "uri": s("Tokenizer file. " + URI + " Empty: the family's default tokenizer.", "", max_length=PATH),
            "format": s("hf-json: a Hugging Face tokenizer.json (Llama 3); tiktoken; sentencepiece: a "
                        "tokenizer.model (InternLM, LLaMA).", "hf-json",
                        enum=["hf-json", "tiktoken", "sentencepiece"]),
        }),
        "tiny": obj("Shape of the tiny-llama model (cpu profile only; weights are random, seeded by "
                    "training.seed).", {
            "numLayers": i("Transformer layers.", 2, 1, 64),
            "hiddenSize": i("Hidden size; a multiple of numHeads.", 64, 8, 8192),
            "numHeads": i("Attention heads.", 4, 1, 128),
            "vocabSize": i("Vocabulary size.", 512, 32, 262144),
        }, rules=[rule("self.hiddenSize % self.numHeads == 0",
                       "spec.model.tiny.hiddenSize must be a multiple of spec.model.tiny.numHeads",
                       ".hiddenSize")]),
    }, default=False, rules=[
        rule("self.family == 'tiny-llama' || size(self.checkpoint) > 0",
             "spec.model.checkpoint is required for families other than tiny-llama", ".checkpoint",
             "FieldValueRequired"),
        immutable("model"),
    ])

    extra_rule = obj("A classification rule: a row whose question matches every given matcher gets `type`.", {
        "type": s("Problem type assigned to matching rows (lower_snake_case).", pattern=TYPE_NAME, max_length=63),
        "prefix": s("The question (spaces removed) starts with this.", "", max_length=256),
        "suffix": s("The question (spaces removed) ends with this.", "", max_length=256),
        "contains": s("The question contains this.", "", max_length=256),
        "regex": s("A Python regular expression searched in the question.", "", max_length=256),
    }, required=["type"], default=False, rules=[
        rule("size(self.prefix) + size(self.suffix) + size(self.contains) + size(self.regex) > 0",
             "spec.data.classify.extraRules[]: give at least one of prefix, suffix, contains, regex")])

    data = obj("Training data: where it comes from and how `prepare` turns it into prompts.", {
        "source": obj("The raw training data.", {
            "uri": s("Data file, or a directory on the work volume: every file of the format in it "
                     "(*.csv for mmlu-csv, *.jsonl and *.json otherwise), read in name order (seed 002's "
                     "MMLU and CMMLU CSVs). " + URI, max_length=PATH, min_length=1),
            "format": s("contest-jsonl: JSON lines {problem, solution} (the contest's train.json); "
                        "alpaca-json: a JSON list of {instruction, input, output} (BELLE school_math, converted "
                        "MMLU); mmlu-csv: MMLU/CMMLU CSV files (question, A-D, answer).",
                        "contest-jsonl", enum=["contest-jsonl", "alpaca-json", "mmlu-csv"]),
            "sha256": s("Optional SHA-256 of the file, verified before use (a single file only).", "",
                        pattern=r"^([0-9a-f]{64})?$",
                        max_length=64),
        }, required=["uri"], default=False),
        "mix": arr("Other data replayed into the training set to keep the base model's original ability "
                   "(e.g. 10% reading-comprehension rows beside the math rows). Rows are drawn seeded by "
                   "sample.seed; prepare counts them per source.", obj("A source mixed in.", {
            # No defaults inside list items: run-local (no API server) could not apply them the same way.
            "name": s("Name in status and in the training rows' type; absent: mix<index>.",
                      pattern=r"^([a-z][a-z0-9_-]*)?$", max_length=63),
            "source": obj("The rows to mix in.", {
                "uri": s("Data file. " + URI, max_length=PATH, min_length=1),
                "format": s("squad-jsonl (when absent) / squad-json: reading comprehension, asked as evaluate "
                            "asks SQuAD; contest-jsonl, alpaca-json: instruction rows, asked with `template`.",
                            enum=["squad-jsonl", "squad-json", "contest-jsonl", "alpaca-json"]),
                "sha256": s("Optional SHA-256 of the file, verified before use.", pattern=r"^([0-9a-f]{64})?$",
                            max_length=64),
            }, required=["uri"], default=False),
            "share": n("Share of the final training set drawn from this source, in (0, 1); give share or count.",
                       None, 0, 1, exclusive_min=True, exclusive_max=True),
            "count": i("Rows drawn from this source (repeating them when it has fewer); give share or count.",
                       None, 1),
            "template": obj("How contest-jsonl and alpaca-json rows are asked; absent: the run's template.", {
                "name": s("alpaca, vicuna or multiple-choice.", enum=["alpaca", "vicuna", "multiple-choice"]),
                "systemPrompt": s("System prompt; empty: the template's default.", max_length=LONG),
            }, required=["name"], default=False),
        }, required=["source"], default=False, rules=[
            rule("has(self.share) != has(self.count)", "spec.data.mix[]: give exactly one of share and count"),
        ]), [], max_items=16) | {"x-kubernetes-validations": [rule(
            "self.filter(m, has(m.share)).map(m, m.share).sum() < 1.0",
            "spec.data.mix: the shares must add up to less than 1 (the rest is the main source's rows)")]},
        "leakage": s("What prepare does with training rows (mix included) that are also rows evaluate or predict "
                     "will score, exactly or as near-duplicates: drop them (counted), fail the stage, or warn "
                     "(keep them, counted, an Event).", "drop", enum=["drop", "fail", "warn"]),
        "maxBadRows": i("Rows that cannot be parsed: -1 counts and reports them and never fails; N fails the "
                        "prepare stage when there are more than N.", -1, -1),
        "dedupe": b("Drop repeated (problem, solution) pairs (809,993 -> 548,942 rows in the contest data).", True),
        "classify": obj("Classifying rows into problem types (used by sampling and per-type accuracy).", {
            "extraRules": arr("Rules tried, in order, before the built-in contest rules.", extra_rule, [],
                              max_items=32),
        }),
        "sample": obj("Which rows of each type go into the training set.", {
            "mode": s("none: all rows; quota: `quotas[type]` rows per type, upsampling types with fewer rows "
                      "(seed 000); counts: exactly `quotas[type]` rows, an error when fewer exist (seed 001); "
                      "fraction: a random `fraction` of all rows (seed 003).", "none",
                      enum=["none", "quota", "counts", "fraction"]),
            "seed": i("Random seed for sampling.", 42, 0),
            "quotas": smap("Rows per problem type for quota and counts modes; types not listed are dropped.",
                           {"type": "integer", "minimum": 0, "description": "Rows of this type."}),
            "fraction": n("Share of rows kept in fraction mode, in (0, 1].", 1.0, 0, 1, exclusive_min=True),
        }, rules=[
            rule("!(self.mode in ['quota', 'counts']) || (has(self.quotas) && size(self.quotas) > 0)",
                 "spec.data.sample.quotas must list at least one type when mode is quota or counts",
                 ".quotas", "FieldValueRequired"),
        ]),
        "chainOfThought": obj("Rewriting answers as worked steps (seed 000).", {
            "enabled": b("Rewrite the answers of supported types as step-by-step solutions.", False),
            "decimals": i("Decimals results are rounded to.", 2, 0, 10),
            "types": arr("Problem types to rewrite; empty: seed 000's set.",
                         s("A problem type.", pattern=TYPE_NAME, max_length=63), [], list_type="set"),
        }),
        "template": obj("The prompt template.", {
            "name": s("alpaca (seeds 000, 001, 003); vicuna (FastChat conversation, seed 004); "
                      "multiple-choice (seed 002).", "alpaca", enum=["alpaca", "vicuna", "multiple-choice"]),
            "systemPrompt": s("System prompt; empty: the template's default.", "", max_length=LONG),
        }),
        "seqLength": {"x-kubernetes-int-or-string": True,
                      "description": "Tokens per sample (MindRecord rows hold seqLength+1). An integer "
                                     "(16-32768), or \"auto\": the smallest multiple of 64 that fits "
                                     "seqLengthPercentile of the prepared rows.",
                      "default": 512,
                      "x-kubernetes-validations": [rule(
                          "type(self) == int ? (int(self) >= 16 && int(self) <= 32768) : string(self) == 'auto'",
                          "spec.data.seqLength must be an integer from 16 to 32768 or the string \"auto\"")]},
        "seqLengthPercentile": n("For seqLength auto: the share (percent) of rows that must fit.", 100, 50, 100),
        "shards": i("MindRecord shard files tokenize writes.", 1, 1, 64),
        "batching": obj("How rows become training batches. bucketed: rows of similar length share a "
                        "batch, padded only to that batch's longest row (MindFormers' dynamic_batch; "
                        "the NPUs stop computing padding); padded: every row padded to seqLength; auto: "
                        "bucketed where it runs, padded where not (LoRA on wo: MindFormers 1.9 fails on a "
                        "symbolic sequence length there).", {
            "mode": s("auto, bucketed or padded.", "auto", enum=["auto", "bucketed", "padded"]),
            "multiple": i("bucketed: a batch's width (tokens per row, before the one-token shift) is a "
                          "multiple of this; larger values compile fewer shapes, smaller ones pad less.",
                          8, enum=[1, 2, 4, 8, 16, 32, 64]),
        }),
    }, required=["source"], default=False, rules=[
        immutable("data"),
        rule("self.batching.mode == 'padded' || type(self.seqLength) != int || "
             "int(self.seqLength) % self.batching.multiple == 0",
             "spec.data.seqLength must be a multiple of spec.data.batching.multiple unless batching is padded",
             field_path=".seqLength")])

    lora = obj("LoRA: low-rank adapters trained on top of the frozen base model. Trainable parameters per "
               "adapted matrix are rank x (in + out); the run reports trainable / total as lowParamRatio.", {
        "rank": i("Rank r of the update B.A (8 in every seed).", 8, 1, 256),
        "alpha": n("Scaling numerator: the update is scaled by alpha / rank (16 in every seed).", 16, 0,
                   exclusive_min=True, maximum=4096),
        "dropout": n("Dropout on the adapter input, in [0, 1).", 0.05, 0, 1, exclusive_max=True),
        "targetModules": arr("Projections that get adapters, by MindFormers parameter name suffix (wq, wk, wv, "
                             "wo, w1, w2, w3); rendered to MindFormers' '.*wq|.*wv'.",
                             s("A module name.", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=63),
                             ["wq", "wv"], max_items=16, list_type="set", min_items=1),
    }, rules=[immutable("lora")])

    training = obj("The fine-tune run: epochs, batch, optimizer, learning rate and checkpoints.", {
        "epochs": i("Passes over the training set.", 1, 1, 1000),
        "batchSize": i("Samples per step per data-parallel rank.", 32, 1, 4096),
        "sinkMode": b("Data sinking: sinkSize steps per host round trip (faster on Ascend).", True),
        "sinkSize": i("Steps per sink.", 2, 1, 1000),
        "seed": i("Random seed for initialisation and shuffling.", 0, 0),
        "optimizer": obj("The optimizer.", {
            "type": s("Optimizer class.", "FP32StateAdamWeightDecay",
                      enum=["FP32StateAdamWeightDecay", "AdamWeightDecay", "AdamW", "Adam"]),
            "beta1": n("First-moment decay, in [0, 1).", 0.9, 0, 1, exclusive_max=True),
            "beta2": n("Second-moment decay, in [0, 1).", 0.95, 0, 1, exclusive_max=True),
            "eps": n("Denominator epsilon, > 0.", 1.0e-8, 0, 1, exclusive_min=True),
            "weightDecay": n("Weight decay, >= 0.", 0.0, 0, 1),
        }),
        "lrSchedule": obj("The learning-rate schedule.", {
            "type": s("Schedule class.", "CosineWithWarmUpLR",
                      enum=["CosineWithWarmUpLR", "LinearWithWarmUpLR", "ConstantWarmUpLR", "constant"]),
            "learningRate": n("Peak learning rate, > 0.", 1.0e-4, 0, 1, exclusive_min=True),
            "lrEnd": n("Final learning rate, <= learningRate.", 0.0, 0, 1),
            "warmupRatio": n("Share of steps spent warming up, in [0, 1].", 0.03, 0, 1),
        }, rules=[rule("self.lrEnd <= self.learningRate",
                       "spec.training.lrSchedule.lrEnd must not exceed spec.training.lrSchedule.learningRate",
                       ".lrEnd")]),
        "checkpoint": obj("When checkpoints are saved. Exactly one of everyEpoch and saveSteps > 0.", {
            "everyEpoch": b("Save once per epoch (steps computed from the data).", True),
            "saveSteps": i("Save every N steps (0: not by steps).", 0, 0),
            "keepMax": i("Checkpoints kept per rank (older ones are deleted).", 5, 1, 1000),
        }, rules=[rule("self.everyEpoch != (self.saveSteps > 0)",
                       "spec.training.checkpoint: set exactly one of everyEpoch: true or saveSteps > 0",
                       ".saveSteps")]),
        "maxDeviceMemory": s("MindSpore context max_device_memory per NPU, e.g. 58GB.", "58GB",
                             pattern=r"^[1-9][0-9]*GB$", max_length=8),
    }, rules=[immutable("training")])

    resources = obj("Compute: NPUs per node, nodes, and how the model is split across them.", {
        "npusPerNode": i("NPUs (huawei.com/Ascend910) per training pod: 1, 2, 4 or 8 (one HCCS ring for 4). "
                         "In the cpu profile: worker processes.", 4, enum=[1, 2, 4, 8]),
        "nodes": i("Training nodes; more than 1 runs training as an Indexed Job plus a headless Service.",
                   1, 1, 64),
        "requestNpusOnCpu": b("cpu profile: the training pod asks for npusPerNode huawei.com/Ascend910 as in "
                              "the ascend profile, and its workers follow the devices allocated "
                              "(ASCEND_VISIBLE_DEVICES). For clusters whose nodes emulate NPUs, such as the "
                              "local demo's node; the ascend profile always asks.", False),
        "parallel": obj("MindFormers parallel_config; dataParallel x modelParallel x pipelineStage must equal "
                        "npusPerNode x nodes.", {
            "dataParallel": i("Data-parallel ranks.", 4, 1, 512),
            "modelParallel": i("Tensor-parallel ranks (contest: 4).", 1, 1, 64),
            "pipelineStage": i("Pipeline stages.", 1, 1, 64),
            "microBatchNum": i("Micro-batches per step (pipeline parallelism); >= pipelineStage.", 1, 1, 1024),
        }, rules=[rule("self.microBatchNum >= self.pipelineStage",
                       "spec.resources.parallel.microBatchNum must be at least pipelineStage",
                       ".microBatchNum")]),
    }, rules=[
        rule("self.parallel.dataParallel * self.parallel.modelParallel * self.parallel.pipelineStage == "
             "self.npusPerNode * self.nodes",
             "spec.resources.parallel: dataParallel x modelParallel x pipelineStage must equal "
             "npusPerNode x nodes", ".parallel"),
        immutable("resources"),
    ])

    gate = obj("The original-capability gate: an epoch passes when its SQuAD scores are high enough.", {
        "mode": s("relative: f1/em are fractions of the base model's scores (contest: 0.9); absolute: minimum "
                  "scores on the 0-100 scale.", "relative", enum=["relative", "absolute"]),
        "f1": n("Minimum F1 (relative: fraction in (0, 1]; absolute: 0-100).", 0.9, 0, 100),
        "em": n("Minimum EM (relative: fraction in (0, 1]; absolute: 0-100).", 0.9, 0, 100),
    }, rules=[rule("self.mode == 'absolute' || (self.f1 > 0.0 && self.f1 <= 1.0 && self.em > 0.0 && self.em <= 1.0)",
                   "spec.evaluation.gate: in relative mode f1 and em are fractions in (0, 1]", ".f1")])

    evaluation = obj("SQuAD evaluation of the original capability, for the base model and each candidate epoch. "
                     "Required: every recipe proves the model kept its ability; set enabled: false to skip.", {
        "enabled": b("Evaluate (needed for the gate).", True),
        "dataset": obj("The evaluation set.", {
            "uri": s("SQuAD file. " + URI, "", max_length=PATH),
            "format": s("squad-json: SQuAD dev-v1.1 JSON (first question of each paragraph: 2,067 samples); "
                        "squad-jsonl: JSON lines {context, question, answers}.", "squad-json",
                        enum=["squad-json", "squad-jsonl"]),
        }),
        "maxSamples": i("Evaluate at most this many samples (0: all).", 0, 0),
        "maxNewTokens": i("Tokens generated per answer.", 20, 1, 4096),
        "answerRule": s("Which gold answers a prediction is scored against: first (the first answer only, as "
                        "MindFormers' EmF1Metric and the contest's base scores 59.87/44.17) or best (the best over "
                        "all answers, as the official SQuAD v1.1 script; higher).", "first", enum=["first", "best"]),
        "epochs": arr("Epochs to evaluate; empty: every saved epoch.", i("An epoch (1-based).", minimum=1),
                      [], max_items=1000, list_type="set"),
        "gate": gate,
        "baseScores": obj("The base model's known scores {f1, em} (0-100); given, the base model is not "
                          "evaluated (contest Llama3-8B: 59.87 / 44.17).", {
            "f1": n("The base model's SQuAD F1.", minimum=0, maximum=100),
            "em": n("The base model's SQuAD EM.", minimum=0, maximum=100),
        }),
    }, default=False, rules=[
        rule("!self.enabled || size(self.dataset.uri) > 0",
             "spec.evaluation.dataset.uri is required when evaluation is enabled", ".dataset.uri",
             "FieldValueRequired"),
        immutable("evaluation"),
    ])

    prediction = obj("Math (or multiple-choice) accuracy on a held-out set, per problem type. Required; set "
                     "enabled: false to skip.", {
        "enabled": b("Predict and score.", True),
        "dataset": obj("The held-out set.", {
            "uri": s("Held-out file. " + URI, "", max_length=PATH),
            "format": s("contest-jsonl: {problem, solution} lines; mmlu-csv: multiple choice; alpaca-json.",
                        "contest-jsonl", enum=["contest-jsonl", "mmlu-csv", "alpaca-json"]),
        }),
        "maxSamples": i("Predict at most this many rows (0: all).", 0, 0),
        "types": arr("Problem types to predict (as the data side classifies the questions, extra rules "
                     "first); empty: every row. Taken before maxSamples.",
                     s("A problem type.", pattern=TYPE_NAME, max_length=63), [], list_type="set"),
        "tolerance": n("Absolute tolerance when comparing the last number of an answer.", 0.01, 0),
        "maxNewTokens": i("Tokens generated per answer.", 128, 1, 8192),
    }, default=False, rules=[
        rule("!self.enabled || size(self.dataset.uri) > 0",
             "spec.prediction.dataset.uri is required when prediction is enabled", ".dataset.uri",
             "FieldValueRequired"),
        immutable("prediction"),
    ])

    storage = obj("The work volume every stage pod mounts. Changing it after the run starts is rejected.", {
        "pvcName": s("An existing PersistentVolumeClaim to use. Empty: the operator creates <run>-work. The "
                     "claim is never deleted with the run, so its data outlives it.", "",
                     pattern=DNS_LABEL, max_length=63),
        "size": s("Size of the claim the operator creates.", "200Gi",
                  pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$", max_length=32),
        "storageClassName": s("StorageClass of the claim the operator creates; empty: the cluster default.", "",
                              max_length=SHORT),
        "dataPath": s("Mount path of the work volume in every pod; runs write under <dataPath>/runs/<run>.",
                      "/data", pattern=r"^/[^\s]*$", max_length=PATH),
    }, rules=[immutable("storage")])

    images = obj("Container images. Changes apply to stages that have not started yet.", {
        "pipeline": s("The pipeline image (mathtune-pipeline on PATH).", "mathtune/pipeline-ascend:0.1.0",
                      min_length=1, max_length=PATH),
        "pullPolicy": s("imagePullPolicy of stage containers.", "IfNotPresent",
                        enum=["Always", "IfNotPresent", "Never"]),
    })

    export = obj("Export the chosen checkpoint in the formats the rest of the ecosystem reads (an export stage "
                 "after report; left out: no export). docs/export.md.", {
        "formats": arr("peft: the LoRA adapter as PEFT saves one (adapter_config.json, adapter_model.safetensors); "
                       "hf: the merged model in Hugging Face's layout (config.json, sharded safetensors, tokenizer).",
                       s("An export format: peft or hf.", enum=["peft", "hf"]), ["peft", "hf"], max_items=2, list_type="set",
                       min_items=1),
        "epoch": i("The epoch to export; 0: the report's best epoch (the best that passed the gate).", 0, 0),
        "whenGateFails": b("Export the best epoch even when no epoch passed the original-ability gate (else the "
                           "export stage is skipped, saying why).", False),
        "destination": s("Where to copy the export besides the run's directory: a path on the work volume "
                         "(absolute, or relative to storage.dataPath) or s3://bucket/prefix (the data sources' "
                         "endpoint and credentials). Files go under <destination>/<format>/. Empty: the run's "
                         "directory only.", "", pattern=r"^(s3://[^/\s]+/[^\s]*|[^:\s]*)$", max_length=PATH),
        "baseModel": s("base_model_name_or_path of the adapter and the model card (e.g. the hub name of the base "
                       "model); empty: spec.model.checkpoint.", "", max_length=PATH),
        "maxShardSize": s("Largest safetensors shard of the hf format, as Hugging Face spells it.", "5GB",
                          pattern=r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)$", max_length=32),
    }, default=False)

    toleration = obj("A pod toleration (core/v1 Toleration).", {
        "key": s("Taint key; empty with operator Exists matches every taint.", max_length=SHORT),
        "operator": s("Exists or Equal.", enum=["Exists", "Equal"]),
        "value": s("Taint value (operator Equal).", max_length=SHORT),
        "effect": s("NoSchedule, PreferNoSchedule or NoExecute; empty matches all.",
                    enum=["", "NoSchedule", "PreferNoSchedule", "NoExecute"]),
        "tolerationSeconds": i("How long a NoExecute taint is tolerated.", minimum=0),
    }, default=False)

    scheduling = obj("Where stage pods run. Changes apply to stages that have not started yet.", {
        "nodeSelector": smap("Node labels every stage pod requires, merged with accelerator: huawei-Ascend910 in "
                             "the ascend profile.", {"type": "string", "maxLength": 63, "description": "Label value."},
                             max_props=32),
        "tolerations": arr("Extra tolerations (the ascend profile adds the huawei.com/Ascend910 one).",
                           toleration, [], max_items=32),
        "priorityClassName": s("PriorityClass of stage pods.", "", max_length=SHORT),
        "schedulerName": s("Scheduler of stage pods, e.g. volcano; empty: the default scheduler.", "",
                           max_length=SHORT),
        "queue": s("Volcano queue (pod annotation scheduling.volcano.sh/queue-name); needs schedulerName "
                   "volcano.", "", max_length=SHORT),
        "localQueue": s("Kueue LocalQueue of the run's namespace: every stage Job is submitted to it (label "
                        "kueue.x-k8s.io/queue-name), made suspended, and runs when Kueue admits it; status says "
                        "why it waits. runPolicy.suspend then (de)activates the stage's Workload.", "",
                        pattern=DNS_LABEL, max_length=63),
        "mindCluster": obj("Huawei MindCluster mode (docs/stage-pods.md): for clusters whose Ascend device plugin "
                           "runs with Volcano (MindCluster's ascend-volcano-plugin). NPU stages then get a PodGroup "
                           "with their NPUs as minResources, the labels ring-controller.atlas and fault-scheduling, "
                           "the node selector accelerator-type, and ASCEND_VISIBLE_DEVICES from Volcano's "
                           "huawei.com/Ascend910 pod annotation. Off: the plain device plugin with any scheduler.", {
            "enabled": b("Use MindCluster's conventions.", False),
            "acceleratorType": s("The nodes' accelerator-type label, which picks the plugin's NPU handler: e.g. "
                                 "module-910b-8 (Atlas 800T A2), module-910b-16, module-a3-16, card-910b-2, module "
                                 "(Atlas 800, 910).", "", pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
                                 max_length=63),
            "chip": s("The ring-controller.atlas label: ascend-910b for Atlas A2/A3, ascend-910 for the first 910.",
                      "ascend-910b", enum=["ascend-910b", "ascend-910"]),
            "faultScheduling": s("The fault-scheduling label: grace (delete a faulty pod gracefully, forcibly after "
                                 "15 minutes), force, or off (no rescheduling).", "grace",
                                 enum=["grace", "force", "off"]),
        }, rules=[rule("!self.enabled || size(self.acceleratorType) > 0",
                       "spec.scheduling.mindCluster.acceleratorType is required when enabled: the node label "
                       "accelerator-type (e.g. module-910b-8) picks MindCluster's NPU handler", ".acceleratorType",
                       "FieldValueRequired")]),
    }, rules=[rule("size(self.queue) == 0 || self.schedulerName == 'volcano'",
                   "spec.scheduling.queue needs spec.scheduling.schedulerName: volcano", ".queue"),
              rule("size(self.localQueue) == 0 || size(self.queue) == 0",
                   "spec.scheduling.localQueue (Kueue) and spec.scheduling.queue (Volcano) are two admission "
                   "queues: set one", ".localQueue"),
              rule("!self.mindCluster.enabled || self.schedulerName == 'volcano'",
                   "spec.scheduling.mindCluster needs spec.scheduling.schedulerName: volcano (MindCluster's device "
                   "plugin gives NPUs only to pods its Volcano plugin placed)", ".mindCluster")])

    run_policy = obj("How stages are run and retried. Changes apply to stages not started yet; suspend applies "
                     "at once.", {
        "suspend": b("true stops the running stage's pods (its Job is suspended); false continues. Training "
                     "continues from its last complete checkpoint.", False),
        "backoffLimit": i("Retries of a failed stage pod (Job backoffLimit, exponential backoff). Exit code 2 "
                          "(bad spec or input) is never retried.", 2, 0, 20),
        "activeDeadlineSeconds": i("Longest a stage may run, in seconds; 0: no limit.", 0, 0),
        "rendezvousTimeoutSeconds": i("Multi-node training: how long ranks wait for each other (rank 0's DNS "
                                      "name, then msrun's cluster) before the attempt fails and, while "
                                      "backoffLimit allows, every rank starts again.", 1800, 30, 86400),
        "ttlSecondsAfterFinished": i("Delete the run's Jobs (and their pods) this long after the run ends; "
                                     "0: keep them.", 0, 0),
    })

    return obj("A LoRA fine-tune of an LLM for math: data preparation, tokenization, training on Ascend NPUs "
               "(or CPU), checkpoint merge, SQuAD evaluation, math prediction and a report, each a Job.", {
        "profile": s("ascend: MindFormers on Huawei Ascend NPUs; cpu: the tiny-llama model on plain CPU "
                     "nodes (npusPerNode = worker processes).", "ascend", enum=["ascend", "cpu"]),
        "model": model,
        "data": data,
        "lora": lora,
        "training": training,
        "resources": resources,
        "evaluation": evaluation,
        "prediction": prediction,
        "storage": storage,
        "export": export,
        "images": images,
        "scheduling": scheduling,
        "podTemplates": pod_templates_schema(toleration),
        "runPolicy": run_policy,
    }, required=["model", "data", "evaluation", "prediction"], default=False, rules=[
        rule("(self.profile == 'cpu') == (self.model.family == 'tiny-llama')",
             "spec.model.family: tiny-llama runs with spec.profile cpu, and the cpu profile runs only tiny-llama",
             ".model.family"),
        rule("self.profile == 'ascend' || (self.resources.parallel.modelParallel == 1 && "
             "self.resources.parallel.pipelineStage == 1)",
             "spec.resources.parallel: the cpu profile supports data parallelism only (modelParallel and "
             "pipelineStage must be 1)", ".resources.parallel"),
        rule("self.evaluation.epochs.all(e, e <= self.training.epochs)",
             "spec.evaluation.epochs: every epoch must be at most spec.training.epochs", ".evaluation.epochs"),
        rule("self.profile == oldSelf.profile", "spec.profile is immutable once the run exists", ".profile"),
        rule("!has(self.export) || self.export.epoch <= self.training.epochs",
             "spec.export.epoch: at most spec.training.epochs (0: the report's best epoch)", ".export.epoch"),
        rule("self.data.batching.mode != 'bucketed' || !('wo' in self.lora.targetModules)",
             "spec.data.batching.mode: bucketed cannot train LoRA on wo (MindFormers 1.9 fails on a symbolic "
             "sequence length there); use auto (padded for such runs) or padded", ".data.batching.mode"),
    ])


def status_schema():
    cond = obj("A condition (Kubernetes API conventions).", {
        "type": s("Condition type: Succeeded, Failed, Ready, Suspended, VolumeSufficient, or one per stage "
                  "(Prepared, Tokenized, Trained, Merged, Evaluated, Predicted, Reported, Exported)."),
        "status": s("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "reason": s("CamelCase reason."),
        "message": s("Human-readable detail.", max_length=LONG * 8),
        "lastTransitionTime": {"type": "string", "format": "date-time", "description": "When status last changed."},
        "observedGeneration": i("metadata.generation this condition was set for."),
    }, required=["type", "status"], default=False)
    stage_row = obj("One stage of the run.", {
        "name": s("Stage name."),
        "jobName": s("The stage's Job."),
        "state": s("Pending, Running, Retrying, Suspended, Succeeded or Failed."),
        "startTime": {"type": "string", "format": "date-time", "description": "When the Job was created."},
        "completionTime": {"type": "string", "format": "date-time", "description": "When the stage ended."},
        "attempts": i("Pods started for this stage (1 + retries); for multi-node training, attempts of every rank."),
        "podGroup": s("UID of the Job whose Volcano PodGroup the operator made (a new attempt gets its own)."),
        "summary": s("One-line summary of the stage's result.", max_length=LONG),
        "message": s("The failed pod's message (failure only).", max_length=LONG * 8),
    }, required=["name"], default=False)
    num = lambda d: {"type": "number", "description": d}  # noqa: E731
    epoch_scores = obj("Scores of one epoch.", {
        "f1": num("SQuAD F1 (0-100)."), "em": num("SQuAD EM (0-100)."),
        "accuracy": num("Math (or choice) accuracy (0-1)."),
        "gatePassed": b("Whether F1/EM pass the gate."),
    }, default=False)
    results = obj("What the stages reported.", {
        "rows": obj("Rows kept at each prepare step.", {
            "read": i("Rows read."), "bad": i("Rows that could not be parsed."),
            "deduped": i("Rows after dedupe."), "duplicates": i("Rows dropped as repeats of a (problem, solution) pair."),
            "sampled": i("Rows of the main source in the training set."),
            "trained": i("Rows in the training set: the main source's and the mix's."),
            "other": i("Rows no rule classified."),
            "classified": smap("Rows per problem type after dedupe.", {"type": "integer"}, max_props=256),
        }, default=False),
        "mix": arr("Rows of each spec.data.mix source in the training set.", obj("One source.", {
            "name": s("The source's name."), "drawn": i("Rows drawn."),
            "rows": i("Rows kept (drawn less those the leakage check dropped)."),
        }, default=False), max_items=16),
        "leakage": obj("Training rows found among the rows evaluate or predict score (spec.data.leakage).", {
            "mode": s("drop, fail or warn."), "exact": i("Rows found as they are (after normalisation)."),
            "near": i("Rows found as near-duplicates (the same question with the same numbers)."),
            "dropped": i("Rows removed from the training set."),
            "bySource": smap("Rows found per training source (spec.data.source, spec.data.mix[i]).",
                             {"type": "integer"}, max_props=32),
            "against": smap("Rows found per held-out set.", {"type": "integer"}, max_props=8),
            "unchecked": smap("Held-out sets prepare could not read, and why (the stage that scores them "
                              "reads them again and fails).", {"type": "string", "maxLength": 300}, max_props=8),
        }, default=False),
        "volume": obj("The work volume against what the stages after prepare will write (estimated when "
                      "prepare ended; condition VolumeSufficient says whether it fits).", {
            "neededBytes": i("Bytes tokenize, train and merge will write (docs/contract.md: disk)."),
            "freeBytes": i("Bytes free on the work volume when prepare ended."),
        }, default=False),
        "tokenize": obj("What tokenize wrote.", {
            "rows": i("Rows written."), "seqLength": i("Sequence length used."),
            "truncated": i("Rows cut to seqLength."), "paddingShare": num("Share of padding tokens (0-1)."),
            "shards": i("MindRecord shard files."),
        }, default=False),
        "steps": i("Training steps run."),
        "finalLoss": num("Loss at the end of training."),
        "checkpoints": arr("Epochs with a complete checkpoint.", i("An epoch."), max_items=1000),
        "trainableParams": i("LoRA parameters trained."),
        "totalParams": i("Parameters of the model with adapters."),
        "lowParamRatio": num("trainableParams / totalParams."),
        "baseF1": num("Base model SQuAD F1."), "baseEm": num("Base model SQuAD EM."),
        "epochs": smap("Scores per epoch (key: the epoch).", epoch_scores, max_props=1000),
        "bestEpoch": i("The chosen epoch: the best math accuracy among those that pass the gate."),
        "passedEpochs": arr("Epochs whose F1/EM pass the original-capability gate.", i("An epoch."), max_items=1000),
        "baseAccuracy": num("Math (or choice) accuracy of the base model (0-1), the fine-tune's yardstick."),
        "f1": num("SQuAD F1 of the chosen (or best so far) epoch."),
        "em": num("SQuAD EM of the chosen (or best so far) epoch."),
        "mathAccuracy": num("Math (or choice) accuracy of the chosen (or best so far) epoch (0-1): each output's "
                            "answer as a careful grader reads it (the answer it commits to, not a ramble after "
                            "it; docs/answer-reader.md)."),
        "perType": smap("Accuracy per problem type.", {"type": "number"}, max_props=256),
        "mathAccuracyContestRule": num("Math accuracy of the chosen epoch under the contest's rule (the last "
                                       "number of the output), for comparison with the seeds' reported figures."),
        "baseAccuracyContestRule": num("The base model's math accuracy under the contest's rule."),
        "perTypeContestRule": smap("Accuracy per problem type under the contest's rule.", {"type": "number"},
                                   max_props=256),
        "mathAccuracyTruth": num("Math accuracy of the chosen epoch against the exact answers computed from the "
                                 "questions (computable types only), where mathAccuracy is against the dataset's "
                                 "references (the contest's, from float arithmetic)."),
        "baseAccuracyTruth": num("The base model's math accuracy against the exact answers."),
        "perTypeTruth": smap("Accuracy per problem type against the exact answers.", {"type": "number"},
                             max_props=256),
        "gatePassed": b("Whether the chosen epoch passes the original-capability gate."),
        "closestToGate": obj("When no epoch passes the gate: the one that came nearest.", {
            "epoch": i("The epoch."), "f1": num("Its SQuAD F1."), "em": num("Its SQuAD EM."),
            "f1Short": num("Points of F1 below the gate's threshold."),
            "emShort": num("Points of EM below the gate's threshold."),
        }, default=False),
        "artifacts": smap("Paths of outputs on the work volume (adapter, merged checkpoint, report, plots).",
                          {"type": "string"}, max_props=64),
        "exports": arr("What the export stage wrote, one row per format.", obj("One exported format.", {
            "format": s("peft or hf."),
            "epoch": i("The epoch exported."),
            "location": s("Its directory on the work volume, relative to the run's directory.", max_length=PATH),
            "destination": s("Where it was copied (spec.export.destination), if anywhere.", max_length=PATH),
            "bytes": i("Size of its files."),
            "files": i("Number of its files."),
            "sha256": s("sha256 of its SHA256SUMS file, which lists every file's sha256.", max_length=64),
        }, default=False), max_items=2),
    }, default=False)
    progress = obj("Live progress of the running stage, from its newest mathtune-progress log line.", {
        "stage": s("The stage reporting."),
        "epoch": i("Current epoch."), "epochs": i("Epochs in total."),
        "step": i("Step within the epoch."), "steps": i("Steps per epoch."),
        "loss": num("Latest training loss; null when it is not a finite number (see lossNonFinite)."),
        "lossNonFinite": s("NaN, Infinity or -Infinity when the latest loss is one (JSON has no such numbers).",
                           enum=["NaN", "Infinity", "-Infinity"]),
        "samplesPerSecond": num("Throughput."),
        "etaSeconds": i("Estimated seconds left."),
        "percent": num("Share done, 0-100."),
        "summary": s("Short text for kubectl get: epoch e/E step s/S."),
        "updatedAt": {"type": "string", "format": "date-time", "description": "When the line was read."},
    }, default=False)
    return obj("Observed state of the run.", {
        "observedGeneration": i("metadata.generation the status reflects."),
        "appliedSuspend": b("spec.runPolicy.suspend as the operator last applied it: it changes a Job's suspend only "
                            "when the run's changes, and leaves the Job to Kueue or an administrator otherwise."),
        "phase": s("Pending, Running, Suspended, Succeeded or Failed."),
        "stage": s("The current stage, Done when all succeeded, or the failed stage."),
        "startTime": {"type": "string", "format": "date-time", "description": "When the first stage started."},
        "completionTime": {"type": "string", "format": "date-time", "description": "When the run ended."},
        "jobsDeletedAt": {"type": "string", "format": "date-time",
                          "description": "When ttlSecondsAfterFinished removed the run's Jobs."},
        "conditions": {**arr("Conditions: Succeeded, Failed, Ready, Suspended, VolumeSufficient and one per stage.", cond,
                             max_items=32, list_type="map"), "x-kubernetes-list-map-keys": ["type"]},
        "stages": {**arr("One row per planned stage, in order.", stage_row, max_items=16, list_type="map"),
                   "x-kubernetes-list-map-keys": ["name"]},
        "progress": progress,
        "results": results,
        "display": obj("The results as people read them, for kubectl get's columns (status.results keeps "
                       "the numbers).", {
            "f1": s("SQuAD F1 of the chosen epoch, two decimals."),
            "em": s("SQuAD EM of the chosen epoch, two decimals."),
            "mathAccuracy": s("Math accuracy of the chosen epoch, as a percentage."),
        }, default=False),
    }, default=False)


def fill_defaults(node):
    """Object defaults spelled out in full: the API server checks a default
    against the CEL rules as written, before nested defaults apply."""
    rules = [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    if "self == oldSelf" in rules:
        node["description"] += " Immutable once the run exists."
    if "default" in node and node.get("type") != "object" and "description" in node:
        # kubectl explain does not print schema defaults; say them in words.
        node["description"] += f" Default: {json.dumps(node['default'])}."
    if node.get("type") == "object" and "properties" in node:
        for child in node["properties"].values():
            fill_defaults(child)
        if node.get("default") == {}:
            node["default"] = {k: v["default"] for k, v in node["properties"].items() if "default" in v}
    elif node.get("type") == "array":
        fill_defaults(node["items"])
    return node


def crd():
    schema = {
        "type": "object",
        "description": "MathFinetune is one LoRA fine-tuning run of an LLM for math.",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": fill_defaults(spec_schema()),
            "status": status_schema(),
        },
        "required": ["spec"],
        "x-kubernetes-validations": [rule(
            "size(self.metadata.name) <= 40",
            "metadata.name must be at most 40 characters: it prefixes the run's Job, Service and claim names")],
    }
    col = lambda name, path, typ, desc, prio=0: {  # noqa: E731
        "name": name, "type": typ, "jsonPath": path, "description": desc, "priority": prio}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "mathfinetunes.mathtune.dev",
                     "labels": {"app.kubernetes.io/name": "mathtune", "app.kubernetes.io/part-of": "mathtune"}},
        "spec": {
            "group": "mathtune.dev",
            "scope": "Namespaced",
            "names": {"plural": "mathfinetunes", "singular": "mathfinetune", "kind": "MathFinetune",
                      "listKind": "MathFinetuneList", "shortNames": ["mft"], "categories": ["mathtune"]},
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    col("Stage", ".status.stage", "string", "Current stage"),
                    col("Progress", ".status.progress.summary", "string", "Training progress"),
                    col("Loss", ".status.progress.loss", "number", "Latest training loss"),
                    col("F1", ".status.display.f1", "string", "SQuAD F1"),
                    col("EM", ".status.display.em", "string", "SQuAD EM"),
                    col("Math-Acc", ".status.display.mathAccuracy", "string", "Math accuracy"),
                    col("Phase", ".status.phase", "string", "Run phase", 1),
                    col("Age", ".metadata.creationTimestamp", "date", "Age"),
                ],
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }


HEADER = ("# Generated by crds/generate.py: edit that file, then run `python crds/generate.py`.\n"
          "# The MathFinetune CRD: one source of truth for the API server, the chart and the pipeline.\n")


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=110, allow_unicode=True)


def schema_defaults(node):
    """Every default the spec schema declares, as one nested dict: what the
    API server fills in wherever a field is absent (objects recursed into
    whether or not they default themselves, as run-local needs them)."""
    if node.get("type") == "object" and "properties" in node:
        out = {}
        for name, sub in node["properties"].items():
            value = schema_defaults(sub)
            if value is not None:
                out[name] = value
        return out if out or "default" in node else None
    return node.get("default")


def optional_blocks(schema) -> list:
    """Top-level spec blocks the API server leaves out when the user does: objects that are neither
    required nor defaulted (their presence is the choice, e.g. export)."""
    required = set(schema.get("required") or [])
    return [name for name, sub in schema["properties"].items()
            if sub.get("type") == "object" and "properties" in sub and "default" not in sub and name not in required]


def render_pipeline_defaults() -> str:
    schema = spec_schema()
    defaults = schema_defaults(schema)
    return ('"""Generated by crds/generate.py from the CRD\'s schema: the defaults the API server\n'
            'applies, for runs that meet no API server (run-local). Do not edit."""\n'
            "from typing import Any, Dict, List\n\n"
            f"DEFAULTS: Dict[str, Any] = {pprint.pformat(defaults, sort_dicts=False, width=110)}\n\n"
            "# Blocks whose defaults apply only when the block is given (no default of their own).\n"
            f"OPTIONAL_BLOCKS: List[str] = {optional_blocks(schema)!r}\n")


CONTRACT = REPO / "docs" / "contract.md"
DOC_BEGIN, DOC_END = "<!-- defaults: generated by crds/generate.py -->", "<!-- end of generated defaults -->"


def render_contract_defaults(doc: str) -> str:
    """docs/contract.md with its Defaults block rewritten from the schema."""
    block = yaml.safe_dump({"spec": schema_defaults(spec_schema())}, sort_keys=False, width=110,
                           allow_unicode=True)
    head, rest = doc.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    return f"{head}{DOC_BEGIN}\n```yaml\n{block}```\n{DOC_END}{tail}"


def outputs():
    crd_text = render()
    return {OUT: crd_text, CHART_COPY: crd_text, PIPELINE_DEFAULTS: render_pipeline_defaults(),
            CONTRACT: render_contract_defaults(CONTRACT.read_text())}


def main(argv):
    if "--check" in argv:
        stale = [str(path) for path, text in outputs().items() if not path.exists() or path.read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}: run python crds/generate.py", file=sys.stderr)
            return 1
        return 0
    for path, text in outputs().items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
