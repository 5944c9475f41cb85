"""Kubernetes' own types inside the spec (core/v1 Affinity, Volume, EnvVar,
Toleration, resource quantities), spelled out so the API server checks them at
admission: the CRD is structural, so no field is passed through unchecked.

They are Kubernetes' types, not MathFinetune's: the operator copies them into
pod specs as they are, so the typed models carry them as plain mappings and
their schema is written here as the API server reads it.
"""
from typing import Any, Dict, List, Optional

from .vocabulary import (DNS_LABEL, DNS_SUBDOMAIN, LONG, NPU_RESOURCE, PATH, QUALIFIED_NAME, RESERVED_ENV,
                         RESERVED_MOUNTS, RESERVED_VOLUMES, SHORT, STAGES, rule)


def s(desc: str, default: Optional[str] = None, enum: Optional[List[str]] = None, pattern: Optional[str] = None,
      max_length: int = SHORT, min_length: Optional[int] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": "string", "description": desc, "maxLength": max_length}
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


def i(desc: str, default: Optional[int] = None, minimum: Optional[int] = None, maximum: Optional[int] = None,
      enum: Optional[List[int]] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": "integer", "description": desc}
    if default is not None:
        out["default"] = default
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    if enum is not None:
        out["enum"] = enum
    return out


def b(desc: str, default: Optional[bool] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": "boolean", "description": desc}
    if default is not None:
        out["default"] = default
    return out


def obj(desc: str, props: Dict[str, Any], required: Optional[List[str]] = None, rules: Optional[List[Dict[str, Any]]] = None,
        default: bool = True) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": "object", "description": desc, "properties": props}
    if required:
        out["required"] = required
    if rules:
        out["x-kubernetes-validations"] = rules
    if default:
        # `default: {}` makes the API server fill the nested defaults even
        # when the user leaves the whole block out.
        out["default"] = {}
    return out


def arr(desc: str, items: Dict[str, Any], default: Optional[List[Any]] = None, max_items: int = 64,
        list_type: Optional[str] = None, min_items: Optional[int] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": "array", "description": desc, "items": items, "maxItems": max_items}
    if default is not None:
        out["default"] = default
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    if min_items is not None:
        out["minItems"] = min_items
    return out


def smap(desc: str, values: Dict[str, Any], max_props: int = 64) -> Dict[str, Any]:
    return {"type": "object", "description": desc, "additionalProperties": values, "maxProperties": max_props}


def quantity(desc: str) -> Dict[str, Any]:
    """A resource quantity as core/v1 writes it: 4, "500m", "64Gi"."""
    return {"description": desc, "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                       r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}


def ref(desc: str, name_desc: str, key: bool = False) -> Dict[str, Any]:
    props = {"name": s(name_desc, pattern=DNS_SUBDOMAIN, min_length=1)}
    if key:
        props["key"] = s("The key to read.", min_length=1)
    props["optional"] = b("Start the pod even when it (or the key) is missing.")
    return obj(desc, props, required=["name"] + (["key"] if key else []), default=False)


def label_selector() -> Dict[str, Any]:
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


def affinity_schema() -> Dict[str, Any]:
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

    def weighted(desc: str, field: str, inner: Dict[str, Any]) -> Dict[str, Any]:
        return obj(desc, {"weight": i("Weight, 1-100.", minimum=1, maximum=100), field: inner},
                   required=["weight", field], default=False)

    def pod_affinity(desc: str) -> Dict[str, Any]:
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


def volume_schema(path: str) -> Dict[str, Any]:
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


def pod_template_schema(toleration: Dict[str, Any], path: str) -> Dict[str, Any]:
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


def pod_templates_schema(toleration: Dict[str, Any]) -> Dict[str, Any]:
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


def toleration_schema() -> Dict[str, Any]:
    return obj("A pod toleration (core/v1 Toleration).", {
        "key": s("Taint key; empty with operator Exists matches every taint.", max_length=SHORT),
        "operator": s("Exists or Equal.", enum=["Exists", "Equal"]),
        "value": s("Taint value (operator Equal).", max_length=SHORT),
        "effect": s("NoSchedule, PreferNoSchedule or NoExecute; empty matches all.",
                    enum=["", "NoSchedule", "PreferNoSchedule", "NoExecute"]),
        "tolerationSeconds": i("How long a NoExecute taint is tolerated.", minimum=0),
    }, default=False)


def tolerations_schema() -> Dict[str, Any]:
    return arr("Extra tolerations (the ascend profile adds the huawei.com/Ascend910 one).",
               toleration_schema(), [], max_items=32)


def string_map(desc: str, max_props: int = 32) -> Dict[str, Any]:
    return smap(desc, {"type": "string", "maxLength": 63, "description": "Label value."}, max_props=max_props)
