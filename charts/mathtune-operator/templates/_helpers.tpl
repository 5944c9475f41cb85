{{/* Names and labels shared by every template. */}}

{{- define "mathtune-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name; used for every object the chart makes. */}}
{{- define "mathtune-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mathtune-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that never change for the life of a release: safe in selectors. */}}
{{- define "mathtune-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mathtune-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mathtune-operator.labels" -}}
helm.sh/chart: {{ include "mathtune-operator.chart" . }}
{{ include "mathtune-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mathtune
{{- end -}}

{{- define "mathtune-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mathtune-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mathtune-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaces watched in single-namespace mode (default: the release's). */}}
{{- define "mathtune-operator.watchNamespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- join "," .Values.watch.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Namespace for a monitoring object: its own override or the release's. */}}
{{- define "mathtune-operator.monitorNamespace" -}}
{{- default .root.Release.Namespace .namespace -}}
{{- end -}}

{{/* The operator's command-line flags: scope, health and metrics endpoints. */}}
{{- define "mathtune-operator.args" -}}
- --standalone
{{- if eq .Values.watch.scope "cluster" }}
- --all-namespaces
{{- else }}
{{- range (splitList "," (include "mathtune-operator.watchNamespaces" .)) }}
- --namespace={{ . }}
{{- end }}
{{- end }}
- --liveness=http://0.0.0.0:{{ .Values.ports.health }}/healthz
{{- if .Values.leaderElection.enabled }}
- --leader-election
- --lease-namespace={{ .Release.Namespace }}
- --lease-name={{ include "mathtune-operator.fullname" . }}
{{- else }}
- --no-leader-election
{{- end }}
- --metrics-port={{ .Values.ports.metrics }}
{{- if eq .Values.operator.logLevel "verbose" }}
- --verbose
{{- else if eq .Values.operator.logLevel "debug" }}
- --debug
{{- end }}
{{- with .Values.operator.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Least-privilege rules. Each verb is here because the operator (or kopf under
it) calls it; tests/unit/chart/test_rbac.py lists what needs every one and
fails when a rule is added or dropped without saying why.
*/}}
{{- define "mathtune-operator.clusterRules" -}}
# kopf watches CRDs to learn when the MathFinetune resource appears or changes.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if ne .Values.watch.scope "cluster" }}
# kopf matches the namespaces it was given against the cluster's namespaces
# (and notices them appear); cluster scope watches runs cluster-wide instead.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{- define "mathtune-operator.runRules" -}}
# Runs: watched by kopf (on.event: no finalizer, no annotations, so no
# patch); read by the reconcile loop before each pass.
- apiGroups: [mathtune.dev]
  resources: [mathfinetunes]
  verbs: [get, list, watch]
# A sweep's trials are MathFinetunes it makes (create), and early stopping
# suspends a pruned one (patch: runPolicy.suspend and an annotation saying why).
- apiGroups: [mathtune.dev]
  resources: [mathfinetunes]
  verbs: [create, patch]
# Run status: conditions, stage table, progress, results.
- apiGroups: [mathtune.dev]
  resources: [mathfinetunes/status]
  verbs: [patch]
# Sweeps: watched by kopf; read before each pass; their status is the search's record.
- apiGroups: [mathtune.dev]
  resources: [mathfinetunesweeps]
  verbs: [get, list, watch]
- apiGroups: [mathtune.dev]
  resources: [mathfinetunesweeps/status]
  verbs: [patch]
# Trials name their sweep as owner with blockOwnerDeletion: true (see below).
- apiGroups: [mathtune.dev]
  resources: [mathfinetunesweeps/finalizers]
  verbs: [update]
# Children name their run as owner with blockOwnerDeletion: true, which the
# OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift)
# allows only to who may update the run's finalizers. No finalizer is set.
- apiGroups: [mathtune.dev]
  resources: [mathfinetunes/finalizers]
  verbs: [update]
# One Job per stage: watched (label-selected) so a stage's end wakes its run,
# listed by run, suspended/resumed with the run, deleted for TTL cleanup or
# when its result was lost with its pod.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch, delete]
# A stage Job's pods: termination message (the stage result), Pending reasons;
# watched (label-selected) so a stage's end wakes its run at once.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Progress lines from the running stage pod's log.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# The run's spec ConfigMap, mounted in every stage pod; read when its name
# is taken, to tell ours from an earlier run's.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, get]
# The run's work volume when the spec names no existing claim.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create]
# Headless Service of multi-node training (msrun's rendezvous by DNS); read
# when its name is taken, to tell ours from an earlier run's.
- apiGroups: [""]
  resources: [services]
  verbs: [create, get]
# Volcano's PodGroup of multi-node training (spec.scheduling.schedulerName:
# volcano): every rank is one gang; read when its name is taken, as above.
- apiGroups: [scheduling.volcano.sh]
  resources: [podgroups]
  verbs: [create, get]
# Kueue's Workload of a stage Job (spec.scheduling.localQueue): why it is not
# admitted yet, and runPolicy.suspend as the Workload's spec.active.
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [list, patch]
# Events on runs (kubectl describe mft); kopf posts its handler errors too.
# patch: a repeated Event bumps its count instead of adding another.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
