{{/*
The objects every component has, parameterised by (dict "root" $ "name" "user|auth|gateway" "env" $envDict).
*/}}

{{/* ConfigMap: also "reserved", variables the component's `env` may not set even when the chart leaves
them out (the user service's mail settings: user.mail). */}}

{{/* ConfigMap of the non-secret environment: the chart's own variables plus the component's `env`. */}}
{{- define "suite.configmap" -}}
{{- $v := index .root.Values .name -}}
{{- $env := merge (dict) .env (include "suite.tokenRulesEnv" . | fromYaml) (include "suite.telemetryEnv" . | fromYaml) (include "suite.eventsEnv" . | fromYaml) (include "suite.redisEnv" . | fromYaml) -}}
{{- range $k, $val := $v.env }}
{{- /* The events' settings are the chart's (nats.*, events.*) even when unset: alike for the three; so are
Redis's (redis.*, userCache.*: only the gateway and the user service read them). */}}
{{- if or (hasKey $env $k) (has $k (concat (list "NATS_URL" "EVENTS_MAX_AGE_SECS" "EVENTS_REPLICAS" "REDIS_URL" "REDIS_TIMEOUT_MS" "USER_CACHE" "USER_CACHE_ENTRIES" "USER_CACHE_TTL_SECS") ($.reserved | default list))) }}
{{- fail (printf "%s.env.%s: set by the chart; use the matching value instead" $.name $k) }}
{{- end }}
{{- $_ := set $env $k (toString $val) }}
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
data:
  {{- toYaml $env | nindent 2 }}
{{- end -}}

{{- define "suite.serviceaccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/* The database URL, kept by the chart unless an existing Secret is named. */}}
{{- define "suite.dbSecret" -}}
{{- $db := (index .root.Values .name).database -}}
{{- if not $db.existingSecret }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "suite.componentName" . }}-db
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
type: Opaque
stringData:
  database-url: {{ required (printf "%s.database.url or %s.database.existingSecret is required" .name .name) $db.url | quote }}
{{- end }}
{{- end -}}

{{- define "suite.pdb" -}}
{{- $v := index .root.Values .name -}}
{{- if $v.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "suite.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "suite.hpa" -}}
{{- $v := index .root.Values .name -}}
{{- if $v.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "suite.componentName" . }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy of a gRPC service: its gRPC port from the named components, admin port from scrapers;
with networkPolicy.egress.enabled, egress to DNS, the services in `calls`, PostgreSQL, OTLP, NATS and (user) Redis. */}}
{{- define "suite.grpcNetworkPolicy" -}}
{{- $root := .root -}}
{{- if $root.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "suite.selectorLabels" . | nindent 6 }}
  {{- if $root.Values.networkPolicy.egress.enabled }}
  policyTypes: [Ingress, Egress]
  egress:
    {{- include "suite.egressRules" (dict "root" $root "name" .name "calls" .calls) | nindent 4 }}
  {{- else }}
  policyTypes: [Ingress]
  {{- end }}
  ingress:
    - from:
        {{- range .from }}
        - podSelector:
            matchLabels:
              {{- include "suite.selectorLabels" (dict "root" $root "name" .) | nindent 14 }}
        {{- end }}
      ports:
        - protocol: TCP
          port: grpc
    - from:
        {{- list $root.Values.metrics.scrapeFrom | toYaml | nindent 8 }}
      ports:
        - protocol: TCP
          port: admin
{{- end }}
{{- end -}}

{{/* The Deployment; optional "volumeMounts", "volumes", "annotations" and "secretEnv" (a list of dicts: name,
secretName, key, comment: env variables from Secrets). */}}
{{- define "suite.deployment" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $v := index $root.Values $name -}}
{{- $grpc := ne $name "gateway" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "suite.componentName" . }}
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "suite.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "suite.labels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/" $name "/configmap.yaml") $root | sha256sum }}
        {{- if and $grpc (not $v.database.existingSecret) }}
        checksum/database-secret: {{ include (print $root.Template.BasePath "/" $name "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- if $root.Values.metrics.prometheusAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $root.Values.metrics.adminPort | quote }}
        prometheus.io/path: /metrics
        {{- end }}
        {{- with .annotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "suite.componentName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "suite.podSecurityContext" . | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ include "suite.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/usr/local/bin/suite-{{ $name }}"]
          ports:
            {{- if $grpc }}
            - name: grpc
              containerPort: {{ $v.port }}
              protocol: TCP
            {{- else }}
            - name: http
              containerPort: {{ $v.port }}
              protocol: TCP
            {{- end }}
            - name: admin
              containerPort: {{ $root.Values.metrics.adminPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "suite.componentName" . }}
          env:
            # Shared by the three: the services believe the client address the gateway tells them.
            - name: FORWARDING_SECRET
              valueFrom:
                secretKeyRef:
                  name: {{ include "suite.forwardingSecretName" $root }}
                  key: {{ include "suite.forwardingSecretKey" $root }}
            {{- with $root.Values.nats.existingSecret }}
            # The NATS URL with credentials (nats.existingSecret); else NATS_URL, if any, is in the ConfigMap.
            - name: NATS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: {{ $root.Values.nats.existingSecretKey }}
            {{- end }}
            {{- if and $root.Values.redis.existingSecret (has $name (splitList "," (include "suite.redisComponents" $root))) }}
            # The Redis URL with its password (redis.existingSecret); else REDIS_URL, if any, is in the ConfigMap.
            - name: REDIS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.redis.existingSecret }}
                  key: {{ $root.Values.redis.existingSecretKey }}
            {{- end }}
          {{- if $grpc }}
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "suite.dbSecretName" . }}
                  key: {{ include "suite.dbSecretKey" . }}
          {{- end }}
          {{- range .secretEnv }}
            # {{ .comment }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secretName }}
                  key: {{ .key }}
          {{- end }}
          {{- if $grpc }}
          readinessProbe:
            grpc:
              port: {{ $v.port }}
            periodSeconds: {{ $v.readinessProbe.periodSeconds }}
            timeoutSeconds: {{ $v.readinessProbe.timeoutSeconds }}
            failureThreshold: {{ $v.readinessProbe.failureThreshold }}
          livenessProbe:
            {{- if eq $v.livenessProbe.type "grpc" }}
            grpc:
              port: {{ $v.port }}
            {{- else }}
            httpGet:
              path: /livez
              port: admin
            {{- end }}
            initialDelaySeconds: {{ $v.livenessProbe.initialDelaySeconds }}
            periodSeconds: {{ $v.livenessProbe.periodSeconds }}
            timeoutSeconds: {{ $v.livenessProbe.timeoutSeconds }}
            failureThreshold: {{ $v.livenessProbe.failureThreshold }}
          {{- else }}
          # /readyz and /livez are on the admin port (ADMIN_ADDR), not the public one.
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            periodSeconds: {{ $v.readinessProbe.periodSeconds }}
            timeoutSeconds: {{ $v.readinessProbe.timeoutSeconds }}
            failureThreshold: {{ $v.readinessProbe.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /livez
              port: admin
            initialDelaySeconds: {{ $v.livenessProbe.initialDelaySeconds }}
            periodSeconds: {{ $v.livenessProbe.periodSeconds }}
            timeoutSeconds: {{ $v.livenessProbe.timeoutSeconds }}
            failureThreshold: {{ $v.livenessProbe.failureThreshold }}
          {{- end }}
          {{- if gt (int $v.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $v.preStopSleepSeconds }}
          {{- end }}
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "suite.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if $v.spreadAcrossNodes }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "suite.selectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The migration hook Job of a database-owning service. */}}
{{- define "suite.migrationJob" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $v := index $root.Values $name -}}
{{- if $root.Values.migrations.enabled }}
{{- if not $v.database.existingSecret }}
# The database URL for the hook (the release's own Secret does not exist yet at pre-install).
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "suite.componentName" . }}-migrate
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
type: Opaque
stringData:
  database-url: {{ $v.database.url | quote }}
---
{{- end }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "suite.componentName" . }}-migrate
  namespace: {{ $.root.Release.Namespace }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $root.Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ $root.Values.migrations.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "suite.selectorLabels" (dict "root" $root "name" (printf "%s-migrate" $name)) | nindent 8 }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "suite.podSecurityContext" . | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: migrate
          image: {{ include "suite.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/usr/local/bin/suite-{{ $name }}"]
          args: ["migrate"]
          env:
            - name: RUST_LOG
              value: {{ $root.Values.telemetry.logLevel | quote }}
            - name: LOG_FORMAT
              value: {{ $root.Values.telemetry.logFormat | quote }}
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  {{- if $v.database.existingSecret }}
                  name: {{ $v.database.existingSecret }}
                  key: {{ $v.database.existingSecretKey }}
                  {{- else }}
                  name: {{ include "suite.componentName" . }}-migrate
                  key: database-url
                  {{- end }}
          {{- with $root.Values.migrations.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "suite.containerSecurityContext" . | nindent 12 }}
{{- end }}
{{- end -}}
