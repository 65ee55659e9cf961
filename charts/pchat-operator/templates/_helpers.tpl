{{/* The release's full name: the release name, or release-chart when they differ. */}}
{{- define "pchat-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "pchat-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels that select the operator's pods (stable across upgrades). */}}
{{- define "pchat-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pchat-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pchat-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules on watched namespaces: pools, their status, the published ConfigMaps, the
Secrets a pool names (read by name only), Events. */}}
{{- define "pchat-operator.poolRules" -}}
- apiGroups: ["persistentchat.io"]
  resources: ["persistentchatpools"]
  verbs: ["get", "list", "watch"]
# Status is written by server-side apply only: a patch of the status subresource.
- apiGroups: ["persistentchat.io"]
  resources: ["persistentchatpools/status"]
  verbs: ["patch"]
# The published `<pool>-active-servers`, by server-side apply: the API server asks for create
# as well as patch when the apply makes the object.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# kube-runtime's Recorder writes events.k8s.io Events, and patches the series of one that
# repeats.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
