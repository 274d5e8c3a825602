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
indexer: indexer
{{- end }}

{{/* "true" when the role of values key $key runs: the indexer only with an audit store. */}}
{{- define "auditstream.roleRuns" -}}
{{- $role := index .root.Values .key }}
{{- if and $role.enabled (or (ne .key "indexer") .root.Values.store.enabled) }}true{{ end }}
{{- end }}

{{/* Where the SQLite audit store of a dev install lives (on store.sqlite.existingClaim). */}}
{{- define "auditstream.sqliteDir" -}}
/var/lib/auditstream/store
{{- end }}

{{/* Fails the install on store values that cannot work, saying what to set. */}}
{{- define "auditstream.checkStore" -}}
{{- $store := .Values.store }}
{{- if $store.enabled }}
{{- if and $store.existingSecret $store.sqlite.existingClaim }}
{{- fail "store: set store.existingSecret (PostgreSQL) or store.sqlite.existingClaim (SQLite), not both" }}
{{- end }}
{{- if not (or $store.existingSecret $store.sqlite.existingClaim) }}
{{- fail "store.enabled: set store.existingSecret to the Secret holding the PostgreSQL URL (key store.urlKey), or store.sqlite.existingClaim for a single-replica SQLite dev install" }}
{{- end }}
{{- $apiReplicas := ternary (int .Values.api.replicas) 0 .Values.api.enabled }}
{{- $indexerReplicas := ternary (int .Values.indexer.replicas) 0 .Values.indexer.enabled }}
{{- if and $store.sqlite.existingClaim (or (gt $apiReplicas 1) (gt $indexerReplicas 1)) }}
{{- fail "store.sqlite: one SQLite file takes one writer: set api.replicas=1 and indexer.replicas=1, or use PostgreSQL (store.existingSecret)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* AUDITSTREAM_STORE: the PostgreSQL URL from its Secret (never a value in the manifest),
or the SQLite file of a dev install. */}}
{{- define "auditstream.storeEnv" -}}
- name: AUDITSTREAM_STORE
{{- if .Values.store.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.existingSecret | quote }}
      key: {{ required "store.urlKey: the key of the URL in store.existingSecret" .Values.store.urlKey | quote }}
{{- else }}
  value: {{ printf "sqlite:///%s/audit.sqlite" (include "auditstream.sqliteDir" .) | quote }}
{{- end }}
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
