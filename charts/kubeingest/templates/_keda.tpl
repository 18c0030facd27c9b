{{/*
A ScaledObject for a stream consumer Deployment:
(dict "ctx" $ "component" "embedder" "keda" .Values.embedder.autoscaling.keda
      "stream" <stream> "group" <consumer group>).
Two redis-streams triggers, OR'd by KEDA: lag (undelivered entries; the only mode that scales
from and to zero, Redis 7+) and pending entries (delivered, not yet acked: keeps replicas up
while batches are in flight).
*/}}
{{- define "kubeingest.scaledObject" -}}
{{- $ctx := .ctx }}
{{- $k := .keda }}
{{- $name := printf "%s-%s" (include "kubeingest.fullname" $ctx) .component }}
{{- $secret := include "kubeingest.redis.secretName" $ctx }}
{{- $meta := dict
      "address" (printf "%s:%s" (include "kubeingest.redis.host" $ctx) (include "kubeingest.redis.port" $ctx))
      "stream" .stream
      "consumerGroup" .group
      "databaseIndex" (include "kubeingest.redis.database" $ctx)
      "enableTLS" (ternary "true" "false" (eq (include "kubeingest.redis.tls" $ctx) "true")) }}
{{- if and (not $ctx.Values.redis.enabled) $ctx.Values.externalRedis.username }}
{{- $_ := set $meta "username" $ctx.Values.externalRedis.username }}
{{- end }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $name }}
  labels:
    {{- include "kubeingest.componentLabels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ $name }}
  minReplicaCount: {{ $k.minReplicaCount }}
  maxReplicaCount: {{ $k.maxReplicaCount }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  initialCooldownPeriod: {{ $k.initialCooldownPeriod }}
  {{- if $k.fallbackReplicas }}
  # If KEDA cannot read the stream (e.g. the consumer group does not exist before the first
  # consumer starts), run this many replicas; they create the group.
  fallback:
    failureThreshold: 3
    replicas: {{ $k.fallbackReplicas }}
  {{- end }}
  triggers:
    - type: redis-streams
      metadata:
        {{- toYaml $meta | nindent 8 }}
        lagCount: {{ $k.lagCount | quote }}
        activationLagCount: {{ $k.activationLagCount | quote }}
      {{- if $secret }}
      authenticationRef:
        name: {{ include "kubeingest.fullname" $ctx }}-redis
      {{- end }}
    - type: redis-streams
      metadata:
        {{- toYaml $meta | nindent 8 }}
        pendingEntriesCount: {{ $k.pendingEntriesCount | quote }}
      {{- if $secret }}
      authenticationRef:
        name: {{ include "kubeingest.fullname" $ctx }}-redis
      {{- end }}
{{- end }}
