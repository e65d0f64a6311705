{{/* The chart's name, overridable by nameOverride. */}}
{{- define "stepflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: the release name, suffixed with the
chart's name unless it already holds it; fullnameOverride replaces it.
*/}}
{{- define "stepflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "stepflow.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "stepflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stepflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the controller's pods. */}}
{{- define "stepflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stepflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* The controller's ServiceAccount. */}}
{{- define "stepflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stepflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace of the leader-election Lease. */}}
{{- define "stepflow.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* The controller's image. */}}
{{- define "stepflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The name of the leader-election Lease: the LeaderElectionID the controller
sets (cmd/stepflow/controller.go). The Role grants get and update on it only.
*/}}
{{- define "stepflow.leaderElectionID" -}}
stepflow-controller
{{- end }}

{{/* The subjects of the bindings: the controller's ServiceAccount. */}}
{{- define "stepflow.subjects" -}}
- kind: ServiceAccount
  name: {{ include "stepflow.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* The REST API server's objects (Deployment, Service, roles): <fullname>-server. */}}
{{- define "stepflow.serverName" -}}
{{- printf "%s-server" (include "stepflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the REST API server's pods. */}}
{{- define "stepflow.serverSelectorLabels" -}}
app.kubernetes.io/name: {{ include "stepflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* The REST API server's ServiceAccount. */}}
{{- define "stepflow.serverServiceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (include "stepflow.serverName" .) .Values.server.serviceAccount.name }}
{{- else }}
{{- required "server.serviceAccount.name is required when server.serviceAccount.create is false" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}
