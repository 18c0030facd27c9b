{{/*
Names. Every define is prefixed with "kubeingest." (defines are global across subcharts).
*/}}
{{- define "kubeingest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeingest.fullname" -}}
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

{{- define "kubeingest.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Selector labels stay name + instance + component: Deployment selectors are immutable.
Call the component-aware ones with (dict "ctx" $ "component" "embedder").
*/}}
{{- define "kubeingest.labels" -}}
helm.sh/chart: {{ include "kubeingest.chart" . }}
app.kubernetes.io/name: {{ include "kubeingest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeingest
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kubeingest.componentLabels" -}}
{{ include "kubeingest.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubeingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeingest.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Pods of this release, any component (NetworkPolicy peers). */}}
{{- define "kubeingest.instanceLabels" -}}
app.kubernetes.io/name: {{ include "kubeingest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Marks the Services and pods whose /metrics the monitors scrape. */}}
{{- define "kubeingest.metricsLabel" -}}
kubeingest.io/metrics: "true"
{{- end }}

{{/*
Service accounts.
*/}}
{{- define "kubeingest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-worker" (include "kubeingest.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The HTTP API in cluster mode: it creates IngestionJobs, so it has its own account. */}}
{{- define "kubeingest.api.clusterMode" -}}
{{- if eq (.Values.api.ingestMode | default "local") "cluster" }}true{{ end }}
{{- end }}

{{- define "kubeingest.api.jobsNamespace" -}}
{{- default .Release.Namespace .Values.api.jobsNamespace }}
{{- end }}

{{- define "kubeingest.api.serviceAccountName" -}}
{{- if not (include "kubeingest.api.clusterMode" .) }}
{{- include "kubeingest.serviceAccountName" . }}
{{- else if .Values.api.serviceAccount.create }}
{{- default (printf "%s-api" (include "kubeingest.fullname" .)) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubeingest.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "kubeingest.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The kubeingest image for a component: (dict "ctx" $ "variant" .Values.embedder.imageVariant).
The tag is <image.tag or appVersion>-<variant>; an empty variant gives the bare tag.
*/}}
{{- define "kubeingest.image" -}}
{{- $img := .ctx.Values.image }}
{{- $tag := default .ctx.Chart.AppVersion $img.tag }}
{{- $variant := default $img.variant .variant }}
{{- if $variant }}
{{- printf "%s:%s-%s" $img.repository $tag $variant }}
{{- else }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{/*
Redis: where it is and how to authenticate.
*/}}
{{- define "kubeingest.redis.fullname" -}}
{{- printf "%s-redis" (include "kubeingest.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeingest.redis.host" -}}
{{- if .Values.redis.enabled }}
{{- printf "%s.%s.svc" (include "kubeingest.redis.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "externalRedis.host is required when redis.enabled=false" .Values.externalRedis.host }}
{{- end }}
{{- end }}

{{- define "kubeingest.redis.port" -}}
{{- if .Values.redis.enabled }}6379{{ else }}{{ .Values.externalRedis.port }}{{ end }}
{{- end }}

{{- define "kubeingest.redis.database" -}}
{{- if .Values.redis.enabled }}0{{ else }}{{ .Values.externalRedis.database }}{{ end }}
{{- end }}

{{- define "kubeingest.redis.tls" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.tls }}true{{ end }}
{{- end }}

{{/* The Secret with the Redis password; empty when Redis has none. */}}
{{- define "kubeingest.redis.secretName" -}}
{{- if .Values.redis.enabled }}
{{- default (include "kubeingest.redis.fullname" .) .Values.redis.existingSecret }}
{{- else }}
{{- .Values.externalRedis.existingSecret }}
{{- end }}
{{- end }}

{{- define "kubeingest.redis.secretKey" -}}
{{- if .Values.redis.enabled }}
{{- .Values.redis.existingSecretPasswordKey }}
{{- else }}
{{- .Values.externalRedis.existingSecretPasswordKey }}
{{- end }}
{{- end }}

{{/*
Redis env: REDIS_PASSWORD from the Secret, then KUBEINGEST_REDIS_URL built from it with
Kubernetes' $(VAR) interpolation (so the password never appears in the pod spec).
*/}}
{{- define "kubeingest.redis.env" -}}
{{- include "kubeingest.redis.envItems" . | trim }}
{{- end }}

{{- define "kubeingest.redis.envItems" -}}
{{- $secret := include "kubeingest.redis.secretName" . }}
{{- $user := "" }}
{{- if not .Values.redis.enabled }}{{ $user = .Values.externalRedis.username }}{{ end }}
{{- $scheme := ternary "rediss" "redis" (eq (include "kubeingest.redis.tls" .) "true") }}
{{- $hostPort := printf "%s:%s/%s" (include "kubeingest.redis.host" .) (include "kubeingest.redis.port" .) (include "kubeingest.redis.database" .) }}
{{- if $secret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "kubeingest.redis.secretKey" . }}
- name: KUBEINGEST_REDIS_URL
  value: {{ printf "%s://%s:$(REDIS_PASSWORD)@%s" $scheme $user $hostPort | quote }}
{{- else }}
- name: KUBEINGEST_REDIS_URL
  value: {{ printf "%s://%s" $scheme $hostPort | quote }}
{{- end }}
{{- end }}

{{/*
Qdrant: URL and API key.
*/}}
{{- define "kubeingest.qdrant.fullname" -}}
{{- printf "%s-qdrant" (include "kubeingest.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeingest.qdrant.url" -}}
{{- if .Values.qdrant.enabled }}
{{- printf "http://%s.%s.svc:6333" (include "kubeingest.qdrant.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "externalQdrant.url is required when qdrant.enabled=false" .Values.externalQdrant.url }}
{{- end }}
{{- end }}

{{- define "kubeingest.qdrant.secretName" -}}
{{- if .Values.qdrant.enabled }}
{{- if .Values.qdrant.apiKey.enabled }}
{{- default (include "kubeingest.qdrant.fullname" .) .Values.qdrant.apiKey.existingSecret }}
{{- end }}
{{- else }}
{{- .Values.externalQdrant.existingSecret }}
{{- end }}
{{- end }}

{{- define "kubeingest.qdrant.secretKey" -}}
{{- if .Values.qdrant.enabled }}
{{- .Values.qdrant.apiKey.existingSecretKey }}
{{- else }}
{{- .Values.externalQdrant.existingSecretKey }}
{{- end }}
{{- end }}

{{- define "kubeingest.qdrant.env" -}}
- name: KUBEINGEST_QDRANT_URL
  value: {{ include "kubeingest.qdrant.url" . | quote }}
{{- $secret := include "kubeingest.qdrant.secretName" . }}
{{- if $secret }}
- name: KUBEINGEST_QDRANT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "kubeingest.qdrant.secretKey" . }}
{{- end }}
{{- end }}

{{/*
Pod-level pieces shared by the kubeingest Deployments.
*/}}
{{- define "kubeingest.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/* Writable paths under a read-only root filesystem: /tmp and the home (HF cache). */}}
{{- define "kubeingest.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/kubeingest
{{- end }}

{{- define "kubeingest.volumes" -}}
- name: tmp
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end }}

{{/* Fails the render when a Prometheus Operator object is asked for but unknown. */}}
{{- define "kubeingest.requireMonitoringApi" -}}
{{- if not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}
{{- fail "metrics.serviceMonitor/podMonitor is enabled but the Prometheus Operator API (monitoring.coreos.com/v1) is not installed; install it or render with --api-versions monitoring.coreos.com/v1" }}
{{- end }}
{{- end }}

{{- define "kubeingest.requireKedaApi" -}}
{{- if not (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}
{{- fail "autoscaling.keda.enabled=true but KEDA (keda.sh/v1alpha1) is not installed; install KEDA first or render with --api-versions keda.sh/v1alpha1" }}
{{- end }}
{{- end }}

{{- define "kubeingest.kedaEnabled" -}}
{{- if or (and .Values.embedder.enabled .Values.embedder.autoscaling.keda.enabled) (and .Values.sink.enabled .Values.sink.autoscaling.keda.enabled) }}true{{ end }}
{{- end }}

{{/* Stream names (kubeingest/names.py): {prefix}:{service}:{action_type}. */}}
{{- define "kubeingest.stream.embedRequests" -}}
{{- printf "%s:embedding_service:embedding.batch.process" .Values.config.streamPrefix }}
{{- end }}

{{- define "kubeingest.stream.embeddingResults" -}}
{{- printf "%s:ingestion_service:ingestion.embedding_result" .Values.config.streamPrefix }}
{{- end }}
