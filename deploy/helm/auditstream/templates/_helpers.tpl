{{/* The chart's name, cut to 63 characters. */}}
{{- define "auditstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-<chart>, or the release alone if it holds the chart name. */}}
{{- define "auditstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "auditstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "auditstream.labels" -}}
helm.sh/chart: {{ include "auditstream.chart" . }}
app.kubernetes.io/name: {{ include "auditstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: auditstream
{{- end }}

{{/* Selector labels of every object; a role adds app.kubernetes.io/component. */}}
{{- define "auditstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auditstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The roles: values key -> CLI command. */}}
{{- define "auditstream.roles" -}}
router: router
sinkWorker: sink-worker
api: api
{{- end }}

{{- define "auditstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding secret-keys (and external-id-key). */}}
{{- define "auditstream.secretName" -}}
{{- if .Values.secrets.create }}
{{- printf "%s-secrets" (include "auditstream.fullname" .) }}
{{- else }}
{{- required "secrets.existingSecret: the name of the Secret holding secret-keys (or secrets.create: true)" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}
