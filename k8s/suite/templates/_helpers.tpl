{{/* Names. */}}
{{- define "suite.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "suite.fullname" -}}
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

{{/* A component's object name: (dict "root" $ "name" "user"). */}}
{{- define "suite.componentName" -}}
{{- printf "%s-%s" (include "suite.fullname" .root | trunc 50 | trimSuffix "-") .name -}}
{{- end -}}

{{- define "suite.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: (dict "root" $ "name" "user"). */}}
{{- define "suite.selectorLabels" -}}
app.kubernetes.io/name: {{ include "suite.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "suite.labels" -}}
helm.sh/chart: {{ include "suite.chart" .root }}
{{ include "suite.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: suite
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "suite.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* In-cluster DNS name of a component's Service: (dict "root" $ "name" "auth"). */}}
{{- define "suite.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "suite.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* http://host:port of a gRPC service: (dict "root" $ "name" "user"). */}}
{{- define "suite.grpcUrl" -}}
{{- printf "http://%s:%v" (include "suite.serviceHost" .) (index .root.Values .name).port -}}
{{- end -}}

{{/* JWKS from the auth service's GetJwks over gRPC. */}}
{{- define "suite.jwks" -}}
{{- printf "grpc://%s:%v" (include "suite.serviceHost" (dict "root" . "name" "auth")) .Values.auth.port -}}
{{- end -}}

{{/* Database URL Secret name and key: (dict "root" $ "name" "user"). */}}
{{- define "suite.dbSecretName" -}}
{{- $db := (index .root.Values .name).database -}}
{{- if $db.existingSecret -}}{{ $db.existingSecret }}{{- else -}}{{ include "suite.componentName" . }}-db{{- end -}}
{{- end -}}

{{- define "suite.dbSecretKey" -}}
{{- $db := (index .root.Values .name).database -}}
{{- if $db.existingSecret -}}{{ $db.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{/* The forwarding secret's Secret name and key (the root context). */}}
{{- define "suite.forwardingSecretName" -}}
{{- if .Values.forwardingSecret.existingSecret -}}{{ .Values.forwardingSecret.existingSecret }}
{{- else -}}{{ include "suite.fullname" . }}-forwarding-secret
{{- end -}}
{{- end -}}

{{- define "suite.forwardingSecretKey" -}}
{{- if .Values.forwardingSecret.existingSecret -}}{{ .Values.forwardingSecret.existingSecretKey }}{{- else -}}forwarding-secret{{- end -}}
{{- end -}}

{{/* The signing key Secret's name and key. */}}
{{- define "suite.signingKeySecretName" -}}
{{- $k := .Values.auth.signingKey -}}
{{- if $k.existingSecret -}}{{ $k.existingSecret }}
{{- else if or $k.pem $k.generate -}}{{ include "suite.componentName" (dict "root" . "name" "auth") }}-signing-key
{{- else -}}{{ fail "auth.signingKey: set existingSecret, pem, or generate=true" }}
{{- end -}}
{{- end -}}

{{- define "suite.signingKeySecretKey" -}}
{{- if .Values.auth.signingKey.existingSecret -}}{{ .Values.auth.signingKey.existingSecretKey }}{{- else -}}signing-key.pem{{- end -}}
{{- end -}}

{{/* The Secret of the user service's FACTOR_KEY_FILE (user.factorKey; the root context): its name, or "" when
there is none (second factors with TOTP off). */}}
{{- define "suite.factorKeySecretName" -}}
{{- $k := .Values.user.factorKey -}}
{{- if $k.existingSecret -}}{{ $k.existingSecret }}
{{- else if $k.generate -}}{{ include "suite.componentName" (dict "root" . "name" "user") }}-factor-key
{{- end -}}
{{- end -}}

{{- define "suite.factorKeySecretKey" -}}
{{- if .Values.user.factorKey.existingSecret -}}{{ .Values.user.factorKey.existingSecretKey }}{{- else -}}factor-key{{- end -}}
{{- end -}}

{{/* Where FACTOR_KEY_FILE is mounted in the user service's pods. */}}
{{- define "suite.factorKeyFile" -}}
/etc/suite/factor-key/factor-key
{{- end -}}

{{/* The ID-token keys' Secret name (the root context); its keys are suite.idTokenKeysSecretKey. */}}
{{- define "suite.idTokenKeysSecretName" -}}
{{- $k := .Values.auth.idTokenKeys -}}
{{- if $k.existingSecret -}}{{ $k.existingSecret }}
{{- else if or $k.generate (and $k.rsaPem $k.ecPem) -}}{{ include "suite.componentName" (dict "root" . "name" "auth") }}-id-token-keys
{{- else -}}{{ fail "auth.idTokenKeys: set existingSecret, both rsaPem and ecPem, or generate=true" }}
{{- end -}}
{{- end -}}

{{/* The Secret key of one ID-token key: (dict "root" $ "alg" "rsa|ec"). The chart's own Secret names them
as the service's generated files are named. */}}
{{- define "suite.idTokenKeysSecretKey" -}}
{{- $k := .root.Values.auth.idTokenKeys -}}
{{- if $k.existingSecret -}}{{ ternary $k.existingSecretRsaKey $k.existingSecretEcKey (eq .alg "rsa") }}
{{- else -}}oidc-{{ .alg }}-key.pem
{{- end -}}
{{- end -}}

{{/* The OpenID Connect issuer (PUBLIC_URL). Behind an ingress it cannot be guessed (the host browsers use,
https or not, which port), and relying parties pin it: so it is required there. Without one, the address
`kubectl port-forward` in NOTES gives. */}}
{{- define "suite.publicUrl" -}}
{{- if .Values.auth.publicUrl -}}{{ .Values.auth.publicUrl }}
{{- else if .Values.gateway.ingress.enabled -}}
{{- fail "auth.publicUrl is required with gateway.ingress.enabled: the OpenID Connect issuer, the URL browsers and relying parties reach the gateway at through the ingress (e.g. https://id.example.com)" }}
{{- else -}}http://127.0.0.1:8080
{{- end -}}
{{- end -}}

{{/* Whether the user service has an SMTP server (user.mail.smtp.existingSecret or url): "true" or "". */}}
{{- define "suite.smtpEnabled" -}}
{{- if or .Values.user.mail.smtp.existingSecret .Values.user.mail.smtp.url -}}true{{- end -}}
{{- end -}}

{{/* The Secret (name and key) SMTP_URL comes from: user.mail.smtp.existingSecret, else the chart's own. */}}
{{- define "suite.smtpSecretName" -}}
{{- if .Values.user.mail.smtp.existingSecret -}}{{ .Values.user.mail.smtp.existingSecret }}
{{- else -}}{{ include "suite.componentName" (dict "root" . "name" "user") }}-smtp
{{- end -}}
{{- end -}}

{{- define "suite.smtpSecretKey" -}}
{{- if .Values.user.mail.smtp.existingSecret -}}{{ .Values.user.mail.smtp.existingSecretKey }}{{- else -}}smtp-url{{- end -}}
{{- end -}}

{{/* Where the development mailbox is (MAIL_DIR, an emptyDir), without SMTP. */}}
{{- define "suite.mailDir" -}}
/var/lib/suite-user/mail
{{- end -}}

{{/* The user service's mail variables the chart owns (user.env may not set them; SMTP_URL is a
secretKeyRef, MAIL_DIR the emptyDir without SMTP, PUBLIC_URL the auth service's). */}}
{{- define "suite.mailVars" -}}
SMTP_URL,MAIL_DIR,PUBLIC_URL,MAIL_FROM,BRANDING_PRODUCT_NAME,EMAIL_VERIFICATION,REQUIRE_VERIFIED_EMAIL,EMAIL_VERIFICATION_TTL_SECS,PASSWORD_RESET_TTL_SECS,EMAIL_CHANGE_REVERT_TTL_SECS,MAIL_LINKS_PER_HOUR,MAIL_NOTICE_PASSWORD_CHANGED,MAIL_NOTICE_EMAIL_CHANGED,MAIL_NOTICE_NEW_SIGN_IN,MAIL_NOTICE_ACCOUNT_LOCKED,MAIL_SEND_TIMEOUT_SECS,MAIL_GIVE_UP_AFTER_SECS
{{- end -}}

{{/* The user service's mail environment (ConfigMap data; the root context): PUBLIC_URL always (the links'
base, the auth service's issuer), MAIL_DIR without SMTP, the rest only when set (else the binary's default).
SMTP_URL is a secretKeyRef in the Deployment. */}}
{{- define "suite.mailEnv" -}}
{{- $m := .Values.user.mail -}}
{{- $smtp := include "suite.smtpEnabled" . -}}
{{- if and $m.required (not $smtp) }}
{{- fail "user.mail.required: set user.mail.smtp.existingSecret (or user.mail.smtp.url): without SMTP the user service only writes mail to files in its pods" }}
{{- end }}
{{- if and (kindIs "bool" $m.requireVerifiedEmail) $m.requireVerifiedEmail }}
{{- if and (kindIs "bool" $m.emailVerification) (not $m.emailVerification) }}
{{- fail "user.mail.requireVerifiedEmail needs user.mail.emailVerification (REQUIRE_VERIFIED_EMAIL needs EMAIL_VERIFICATION=true)" }}
{{- end }}
{{- if not $smtp }}
{{- fail "user.mail.requireVerifiedEmail needs SMTP (user.mail.smtp.existingSecret or url): without it no verification link reaches anyone, and nobody could sign in" }}
{{- end }}
{{- end }}
PUBLIC_URL: {{ include "suite.publicUrl" . | quote }}
{{- if not $smtp }}
MAIL_DIR: {{ include "suite.mailDir" . | quote }}
{{- end }}
{{- with $m.from }}
MAIL_FROM: {{ . | quote }}
{{- end }}
{{- with (default (index .Values.gateway.env "BRANDING_PRODUCT_NAME") $m.productName) }}
BRANDING_PRODUCT_NAME: {{ toString . | quote }}
{{- end }}
{{- range $var, $val := dict
  "EMAIL_VERIFICATION" $m.emailVerification
  "REQUIRE_VERIFIED_EMAIL" $m.requireVerifiedEmail
  "EMAIL_VERIFICATION_TTL_SECS" $m.emailVerificationTtlSecs
  "PASSWORD_RESET_TTL_SECS" $m.passwordResetTtlSecs
  "EMAIL_CHANGE_REVERT_TTL_SECS" $m.emailChangeRevertTtlSecs
  "MAIL_LINKS_PER_HOUR" $m.linksPerHour
  "MAIL_NOTICE_PASSWORD_CHANGED" $m.notices.passwordChanged
  "MAIL_NOTICE_EMAIL_CHANGED" $m.notices.emailChanged
  "MAIL_NOTICE_NEW_SIGN_IN" $m.notices.newSignIn
  "MAIL_NOTICE_ACCOUNT_LOCKED" $m.notices.accountLocked
  "MAIL_SEND_TIMEOUT_SECS" $m.sendTimeoutSecs
  "MAIL_GIVE_UP_AFTER_SECS" $m.giveUpAfterSecs }}
{{- if not (kindIs "invalid" $val) }}
{{ $var }}: {{ toString $val | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Token rules every verifier applies alike (ConfigMap data of the three): (dict "root" $ "name" "user"). */}}
{{- define "suite.tokenRulesEnv" -}}
ADMINS_NEED_SECOND_FACTOR: {{ .root.Values.tokens.adminsNeedSecondFactor | toString | quote }}
{{- end -}}

{{/* Environment common to the three binaries (ConfigMap data): (dict "root" $ "name" "user"). */}}
{{- define "suite.telemetryEnv" -}}
{{- $t := .root.Values.telemetry -}}
RUST_LOG: {{ $t.logLevel | quote }}
LOG_FORMAT: {{ $t.logFormat | quote }}
OTEL_SERVICE_NAME: {{ printf "suite-%s" .name | quote }}
{{- with $t.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
OTEL_TRACES_SAMPLER: {{ $t.tracesSampler | quote }}
{{- if $t.tracesSamplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ $t.tracesSamplerArg | quote }}
{{- end }}
{{- $attrs := list (printf "service.namespace=%s" (include "suite.fullname" .root)) (printf "deployment.environment.name=%s" $t.environment) (printf "k8s.namespace.name=%s" .root.Release.Namespace) }}
{{- range $k, $v := $t.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
OTEL_RESOURCE_ATTRIBUTES: {{ join "," $attrs | quote }}
{{- end -}}

{{/* Extra env of a component, after the chart's own (so the chart's keys cannot be set twice). */}}
{{- define "suite.extraEnv" -}}
{{- range $k, $v := .env }}
{{ $k }}: {{ toString $v | quote }}
{{- end }}
{{- end -}}

{{- define "suite.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "suite.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Whether the release has a NATS (nats.url or nats.existingSecret): "true" or "". */}}
{{- define "suite.natsEnabled" -}}
{{- if or .Values.nats.url .Values.nats.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Whether the release has a Redis (redis.url or redis.existingSecret): "true" or "". */}}
{{- define "suite.redisEnabled" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The components that read Redis (REDIS_URL): the gateway (rate buckets) and the user service (the user
cache). The auth service does not. */}}
{{- define "suite.redisComponents" -}}
gateway,user
{{- end -}}

{{/* Whether the user service runs alone (the root context): one replica, no autoscaling: "true" or "". */}}
{{- define "suite.userAlone" -}}
{{- if and (eq (int .Values.user.replicaCount) 1) (not .Values.user.autoscaling.enabled) -}}true{{- end -}}
{{- end -}}

{{/* Where the user service caches user records (the root context): redis, memory or off. userCache.mode
when set (auto: Redis when the release has one, else memory); empty: Redis when the release has one, memory
for a user service that runs alone, off otherwise. Fails on the combinations that cannot work: redis without
Redis, and memory with several replicas (or autoscaling) without NATS, where another replica's writes would
never reach a pod's cache (the in-process bus stays inside the pod) and it could serve a stale record until
the TTL. */}}
{{- define "suite.userCacheBackend" -}}
{{- $mode := .Values.userCache.mode -}}
{{- $redis := include "suite.redisEnabled" . -}}
{{- $backend := "off" -}}
{{- if or (eq $mode "redis") (eq $mode "memory") (eq $mode "off") -}}
{{- $backend = $mode -}}
{{- else if $redis -}}
{{- $backend = "redis" -}}
{{- else if or (eq $mode "auto") (include "suite.userAlone" .) -}}
{{- $backend = "memory" -}}
{{- end -}}
{{- if and (eq $backend "redis") (not $redis) -}}
{{- fail "userCache.mode redis needs Redis: set redis.url or redis.existingSecret (USER_CACHE=redis needs REDIS_URL)" -}}
{{- end -}}
{{- if and (eq $backend "memory") (not (include "suite.userAlone" .)) (not (include "suite.natsEnabled" .)) -}}
{{- fail (printf "userCache.mode %s caches user records in each user pod's memory, but the user service has several replicas (user.replicaCount or user.autoscaling) and no NATS: another replica's writes would never reach a pod's cache, which could serve a stale record until userCache.ttlSecs. Set redis.url (or redis.existingSecret), nats.url, userCache.mode off, or user.replicaCount 1" (ternary "auto (without Redis)" $mode (eq $mode "auto"))) -}}
{{- end -}}
{{- $backend -}}
{{- end -}}

{{/* USER_CACHE of the user service (the root context), or "" to leave it unset (the binary's auto: Redis with
REDIS_URL, else this pod's memory): userCache.mode when set, else off when the chart chooses no cache
(several replicas or autoscaling, and no Redis). */}}
{{- define "suite.userCacheMode" -}}
{{- $backend := include "suite.userCacheBackend" . -}}
{{- if .Values.userCache.mode -}}{{ .Values.userCache.mode }}
{{- else if eq $backend "off" -}}off
{{- end -}}
{{- end -}}

{{/* Environment of the shared state in Redis (ConfigMap data): (dict "root" $ "name" "user"); empty for the
auth service. REDIS_URL from redis.existingSecret is a secretKeyRef in the Deployment. */}}
{{- define "suite.redisEnv" -}}
{{- $root := .root -}}
{{- if has .name (splitList "," (include "suite.redisComponents" $root)) }}
{{- if and $root.Values.redis.url (not $root.Values.redis.existingSecret) }}
REDIS_URL: {{ $root.Values.redis.url | quote }}
{{- end }}
{{- with $root.Values.redis.timeoutMs }}
REDIS_TIMEOUT_MS: {{ . | toString | quote }}
{{- end }}
{{- end }}
{{- if eq .name "user" }}
{{- with include "suite.userCacheMode" $root }}
USER_CACHE: {{ . | quote }}
{{- end }}
{{- with $root.Values.userCache.entries }}
USER_CACHE_ENTRIES: {{ . | toString | quote }}
{{- end }}
{{- with $root.Values.userCache.ttlSecs }}
USER_CACHE_TTL_SECS: {{ . | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Environment of the events and the revocations, the same for the three binaries (ConfigMap data):
(dict "root" $ "name" "user"). NATS_URL from nats.existingSecret is a secretKeyRef in the Deployment. */}}
{{- define "suite.eventsEnv" -}}
{{- $root := .root -}}
ACCESS_TOKEN_TTL_SECS: {{ $root.Values.tokens.accessTokenTtlSecs | toString | quote }}
{{- if and $root.Values.nats.url (not $root.Values.nats.existingSecret) }}
NATS_URL: {{ $root.Values.nats.url | quote }}
{{- end }}
{{- with $root.Values.events.maxAgeSecs }}
EVENTS_MAX_AGE_SECS: {{ . | toString | quote }}
{{- end }}
{{- with $root.Values.events.replicas }}
EVENTS_REPLICAS: {{ . | toString | quote }}
{{- end }}
{{- end -}}

{{/* The egress rules of a component (networkPolicy.egress.enabled): (dict "root" $ "name" "user" "calls"
(list "auth")). DNS, the release's gRPC services it calls, PostgreSQL (user, auth), OTLP, NATS, back-channel
logout (auth), SMTP (user), Redis (gateway, user), extra. */}}
{{- define "suite.egressRules" -}}
{{- $root := .root -}}
{{- $e := $root.Values.networkPolicy.egress -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
  {{- with $e.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- range .calls }}
- ports:
    - protocol: TCP
      port: {{ (index $root.Values .).port }}
  to:
    - podSelector:
        matchLabels:
          {{- include "suite.selectorLabels" (dict "root" $root "name" .) | nindent 10 }}
{{- end }}
{{- if ne .name "gateway" }}
- ports:
    - protocol: TCP
      port: {{ $e.postgresql.port }}
  {{- with $e.postgresql.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $root.Values.telemetry.otlpEndpoint }}
- ports:
    - protocol: TCP
      port: {{ $e.otlp.port }}
  {{- with $e.otlp.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if include "suite.natsEnabled" $root }}
- ports:
    - protocol: TCP
      port: {{ $root.Values.nats.egress.port }}
  {{- with $root.Values.nats.egress.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $root.Values.auth.backchannelLogout.egress }}
{{- if and (eq $.name "auth") .enabled }}
{{- /* Back-channel logout tokens, POSTed by the auth service to the clients' https URIs. */}}
- ports:
    - protocol: TCP
      port: {{ .port }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
{{- if and (eq .name "user") (include "suite.smtpEnabled" $root) }}
{{- with $root.Values.user.mail.smtp.egress }}
{{- /* The SMTP server the user service sends mail through. */}}
- ports:
    - protocol: TCP
      port: {{ .port }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
{{- if and (include "suite.redisEnabled" $root) (has .name (splitList "," (include "suite.redisComponents" $root))) }}
- ports:
    - protocol: TCP
      port: {{ $root.Values.redis.egress.port }}
  {{- with $root.Values.redis.egress.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $e.extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}
