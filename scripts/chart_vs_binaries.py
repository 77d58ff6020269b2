#!/usr/bin/env python3
"""The Helm chart proven against the binaries.

Renders k8s/suite with `helm template` (default values), reads the user, auth and gateway Deployments and
the migration Jobs, and runs the locally built binaries with exactly that wiring: command, args, env
(ConfigMap and Secret references resolved, mounted Secret files written to a temporary directory), ports
and probes. Only these are rewritten:
  - listen addresses (0.0.0.0:PORT) become 127.0.0.1:<free port>, keeping a map container port -> local port;
  - in-cluster Service DNS names (NAME[.NS[.svc[.DOMAIN]]]:PORT) become 127.0.0.1:<local port of the
    Service's target container port>;
  - DATABASE_URL becomes a fresh PostgreSQL database (postgres://postgres@127.0.0.1:5432/<new>);
  - NATS_URL (NATS is outside the chart: nats.url, e.g. nats://nats.nats.svc:4222) becomes a `nats-server -js`
    this script starts on a free port with a temporary store (NATS_SERVER_BIN, else nats-server on the PATH
    or /usr/sbin/nats-server), its HTTP monitoring on another free port;
  - REDIS_URL (Redis is outside the chart: redis.url, e.g. redis://redis-master.redis.svc:6379/0) becomes a
    `redis-server --save "" --appendonly no` this script starts on a free port (REDIS_SERVER_BIN, else
    redis-server on the PATH or /usr/bin/redis-server), requiring the URL's password if it has one (from a
    config file in the temporary directory, never on a command line), same database number; `rediss://`
    becomes `redis://` (the local server has no TLS);
  - mount paths become the temporary directory.
Then: the migration Jobs' commands run first; every env var the chart sets must be one the binary knows
(`--help` lists `[env: NAME=]` or, for hidden values, `[env: NAME]`, less a short allowlist of variables read outside clap); every Service
targetPort, NetworkPolicy port, probe port and scrape annotation must name a declared container port; every
readiness and liveness probe must pass on the mapped ports; a user registers and logs in through the
gateway's REST API and reads itself with the token; SIGTERM stops every binary cleanly within its
terminationGracePeriodSeconds. Exit 0 only if all of it passed.

  python3 scripts/chart_vs_binaries.py [--bin-dir target/debug] [--helm helm] [--postgres URL]
                                       [--chart k8s/suite] [-f values.yaml]... [--set k=v]... [--keep]
  python3 scripts/chart_vs_binaries.py -f k8s/test-values/nats.yaml   # the NATS wiring (see below)
  python3 scripts/chart_vs_binaries.py -f k8s/test-values/nats.yaml -f k8s/test-values/redis.yaml  # + Redis
  python3 scripts/chart_vs_binaries.py -f k8s/test-values/nats.yaml -f k8s/test-values/redis.yaml \
      -f k8s/test-values/mail.yaml                                  # + mail through SMTP
  python3 scripts/chart_vs_binaries.py --rendered FILE --static-only   # the object checks of a render

The gateway and both services must read FORWARDING_SECRET from one Secret key. The OpenID Connect provider
(every render): the auth service's PUBLIC_URL is an issuer URL; SIGNING_KEY_FILE, OIDC_RSA_KEY_FILE and
OIDC_EC_KEY_FILE are files from Secrets, and a Secret the chart renders holds PEM of a kind the service takes
(an RSA key as PKCS#8 or PKCS#1, a P-256 key as PKCS#8 or SEC1); an Ingress has the issuer's host and routes
/.well-known, /oauth2 and /api there. The admin ports are checked too: every component's ADMIN_ADDR listens on its `admin` container port, the
scrape annotation and the /readyz, /livez probes use it, NetworkPolicies admit it from the scrapers alone
(who reach no other port); the running gateway answers 404 for /metrics, /readyz, /livez on its public
port and 200 on its admin port.

Events (every render): NATS_URL is set for all three components or for none, from one value or one Secret
key; ACCESS_TOKEN_TTL_SECS is set alike for all three; when NATS is set, every NetworkPolicy that restricts a
component's egress admits the NATS port (and, for any restricted egress, DNS and the gRPC services the
component calls). With NATS set and the binaries run: every component got NATS_URL (pointed at the local
nats-server) and is connected to it (its client name on /connz); after the user registers and logs in
through the gateway, the JetStream streams SUITE_USER and SUITE_AUTH exist, take their subjects and hold
messages, with the chart's EVENTS_MAX_AGE_SECS / EVENTS_REPLICAS, and the auth service's durable consumer
suite-auth-sessions exists (the server's monitoring endpoint, /jsz). Without NATS (default values) the binaries run on their in-process
bus, and no nats-server is started.

Shared state (every render): REDIS_URL is set for the gateway and the user service or for neither, from one
value or one Secret key, and never for the auth service (which does not read it); REDIS_TIMEOUT_MS is alike
for the two, and USER_CACHE_TTL_SECS only on the user service; when Redis is set, every NetworkPolicy that
restricts the gateway's or the user service's egress admits the Redis port. With Redis set and the binaries
run: the gateway and the user service got REDIS_URL (pointed at the local redis-server) and the auth service
did not; during the register / log in / GET /api/v1/users/me journey through the gateway, keys under
`<REDIS_KEY_PREFIX>rl:` were written (the gateway's rate buckets: watched with keyspace notifications, since
a bucket's key expires as soon as it is full again), and afterwards `<prefix>user:<id>` of the new user is
there (the user service cached the read). Passwords in URLs are shown as <secret> in this script's output.

Mail (every render): the user service's PUBLIC_URL (the base of the links in mail) is an http(s) URL equal to
the auth service's (the issuer); SMTP_URL, when set, comes from a Secret (it may hold a password), and a
Secret the chart renders holds an smtp(s):// URL; without it MAIL_DIR is on a writable emptyDir (the root file
system is read-only); neither the auth service nor the gateway gets a mail setting; when the user service's
egress is restricted, it admits the SMTP URL's port. With the binaries run (every variable must be in
`suite-user --help`, as for all): SMTP_URL becomes an SMTP sink this script runs on a free port (plain SMTP,
no AUTH, no TLS: the URL's credentials and TLS are left out), and the registration's verification mail must
reach it (or, without SMTP, a .eml file in MAIL_DIR), its link under PUBLIC_URL, from MAIL_FROM and naming
BRANDING_PRODUCT_NAME when the chart sets them.

Second factors (every render): the user service's FACTOR_KEY_FILE, when the chart sets it (user.factorKey),
is a file from a Secret, and a Secret the chart renders holds 32 bytes as base64; FACTOR_KEY is set nowhere
(it would be in a ConfigMap); ADMINS_NEED_SECOND_FACTOR is true or false, one value for the three. With the
binaries run: the new user sets up an authenticator app (POST /api/v1/users/me/factors:enrollTotp -> 200), or,
without FACTOR_KEY_FILE, is told second factors are off (400).

Needs PyYAML, grpcio and grpcio-health-checking (scripts/deploy_checks.sh --binaries provides them),
helm (HELM or --helm), psql, PostgreSQL with trust auth for user postgres, for a render with NATS,
nats-server (2.9 or later; Debian's nats-server package), and for a render with Redis, redis-server (6 or
later; Debian's redis-server package). No Redis client library: a few lines of RESP over a socket.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote

try:
    import grpc
    import yaml
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError as e:  # pragma: no cover
    sys.exit(
        f"chart_vs_binaries: missing Python package ({e.name}); "
        "pip install PyYAML grpcio grpcio-health-checking, or run scripts/deploy_checks.sh --binaries"
    )

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "suite"
NAMESPACE = "suite"
COMPONENTS = ("user", "auth", "gateway")

# Variables the binaries read outside clap (so `--help` does not list them): standard names.
STANDARD_ENV = re.compile(r"^(OTEL_[A-Z0-9_]+|RUST_LOG|LOG_FORMAT)$")
# Variables the chart may set before the binaries read them (a warning instead of a failure while a
# change lands in two steps). Empty: every variable the chart sets must be in the binary's `--help`.
TEMPORARY_ALLOWLIST: set[str] = set()

LISTEN_RE = re.compile(r"^(?:0\.0\.0\.0|\[::\]|::)?:(\d+)$")
PROBE_TIMEOUT_SECS = 30


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.warnings: list[str] = []

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"  ok    {what}", flush=True)

    def fail(self, what: str) -> None:
        self.failed.append(what)
        print(f"  FAIL  {what}", flush=True)

    def warn(self, what: str) -> None:
        self.warnings.append(what)
        print(f"  WARN  {what}", flush=True)

    def check(self, cond: bool, what: str, why: str = "") -> bool:
        if cond:
            self.ok(what)
        else:
            self.fail(f"{what}{': ' + why if why else ''}")
        return cond


def section(title: str) -> None:
    print(f"\n--- {title}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------
# The rendered chart


class Rendered:
    def __init__(self, docs: list[dict]) -> None:
        self.docs = docs
        self.by_kind: dict[str, dict[str, dict]] = {}
        for d in docs:
            self.by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    def get(self, kind: str, name: str) -> dict:
        try:
            return self.by_kind[kind][name]
        except KeyError:
            raise LookupError(f"{kind} {name!r} is referenced but not rendered") from None

    def secret_data(self, name: str) -> dict[str, bytes]:
        s = self.get("Secret", name)
        data = {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (s.get("stringData") or {}).items()})
        return data

    def deployment(self, component: str) -> dict:
        for d in self.by_kind.get("Deployment", {}).values():
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == component:
                return d
        raise LookupError(f"no Deployment for component {component}")

    def pods_selected(self, selector: dict) -> list[tuple[str, dict]]:
        """(component, pod spec) of each Deployment whose pod labels match `selector`."""
        out = []
        for d in self.by_kind.get("Deployment", {}).values():
            labels = d["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append((labels["app.kubernetes.io/component"], d["spec"]["template"]["spec"]))
        return out


def render(helm: str, chart: str, values: list[str], sets: list[str]) -> Rendered:
    cmd = [helm, "template", RELEASE, chart, "--namespace", NAMESPACE]
    for f in values:
        cmd += ["-f", f]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return Rendered([d for d in yaml.safe_load_all(out) if d])


# ---------------------------------------------------------------------------------------------------------
# One container's wiring, resolved and rewritten for this machine


class Wiring:
    """Ports of every component (container port name -> local port), and the DNS rewriting."""

    def __init__(self, rendered: Rendered) -> None:
        self.rendered = rendered
        self.ports: dict[str, dict[str, int]] = {}  # component -> port name -> local port
        self.container_ports: dict[str, dict[str, int]] = {}  # component -> port name -> containerPort
        for c in COMPONENTS:
            spec = rendered.deployment(c)["spec"]["template"]["spec"]["containers"][0]
            self.container_ports[c] = {p["name"]: p["containerPort"] for p in spec.get("ports", [])}
            self.ports[c] = {name: free_port() for name in self.container_ports[c]}
        # Service host names as pods would write them.
        self.hosts: dict[str, dict] = {}
        for name, svc in rendered.by_kind.get("Service", {}).items():
            for h in (name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}.svc.cluster.local"):
                self.hosts[h] = svc

    def port_name(self, component: str, port) -> str | None:
        if isinstance(port, str) and not port.isdigit():
            return port if port in self.container_ports[component] else None
        for name, number in self.container_ports[component].items():
            if number == int(port):
                return name
        return None

    def local_port(self, component: str, port) -> int | None:
        name = self.port_name(component, port)
        return self.ports[component][name] if name else None

    def service_target(self, svc: dict, port: int) -> int:
        """The local port behind Service `svc`'s port `port`."""
        name = svc["metadata"]["name"]
        for p in svc["spec"]["ports"]:
            if p["port"] == port:
                target = p.get("targetPort", p["port"])
                pods = self.rendered.pods_selected(svc["spec"]["selector"])
                if not pods:
                    raise LookupError(f"Service {name} selects no Deployment")
                component = pods[0][0]
                local = self.local_port(component, target)
                if local is None:
                    raise LookupError(f"Service {name} port {port} targets {target!r}, not a container port of {component}")
                return local
        raise LookupError(f"Service {name} has no port {port}")

    def rewrite(self, component: str, value: str) -> str:
        m = LISTEN_RE.match(value)
        if m:
            local = self.local_port(component, int(m.group(1)))
            if local is None:
                raise LookupError(f"listen address {value} is on a port {component} does not declare")
            return f"127.0.0.1:{local}"

        def host_port(m: re.Match) -> str:
            host, port = m.group(2), int(m.group(3))
            svc = self.hosts.get(host)
            if svc is None:
                return m.group(0)
            return f"{m.group(1)}127.0.0.1:{self.service_target(svc, port)}"

        return re.sub(r"(^|[/@,=])([a-z0-9][-a-z0-9.]*):(\d+)", host_port, value)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion ($$ escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


class Container:
    def __init__(self, rendered: Rendered, wiring: Wiring, component: str, pod: dict, workdir: Path, db_url: str | None) -> None:
        self.component = component
        self.pod = pod
        self.c = pod["containers"][0]
        self.chart_env: dict[str, str] = {}  # as the pod would see it
        for src in self.c.get("envFrom", []):
            if "configMapRef" in src:
                data = rendered.get("ConfigMap", src["configMapRef"]["name"]).get("data") or {}
            else:
                data = {k: v.decode() for k, v in rendered.secret_data(src["secretRef"]["name"]).items()}
            prefix = src.get("prefix", "")
            self.chart_env.update({prefix + k: str(v) for k, v in data.items()})
        for e in self.c.get("env", []):
            if "value" in e:
                self.chart_env[e["name"]] = expand(str(e["value"]), self.chart_env)
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                self.chart_env[e["name"]] = rendered.secret_data(ref["name"])[ref["key"]].decode()
            elif "configMapKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["configMapKeyRef"]
                self.chart_env[e["name"]] = str(rendered.get("ConfigMap", ref["name"])["data"][ref["key"]])
            else:
                raise LookupError(f"{component}: env {e['name']}: valueFrom {e.get('valueFrom')} not supported here")

        # Volumes: Secrets and ConfigMaps written out, emptyDirs made.
        mounts: dict[str, Path] = {}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for vm in self.c.get("volumeMounts", []):
            local = workdir / "mounts" / vm["mountPath"].lstrip("/")
            local.mkdir(parents=True, exist_ok=True)
            vol = volumes[vm["name"]]
            if "secret" in vol or "configMap" in vol:
                if "secret" in vol:
                    src = vol["secret"]
                    data = rendered.secret_data(src["secretName"])
                else:
                    src = vol["configMap"]
                    data = {k: str(v).encode() for k, v in rendered.get("ConfigMap", src["name"])["data"].items()}
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                for it in items:
                    f = local / it["path"]
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_bytes(data[it["key"]])
                    f.chmod(it.get("mode", src.get("defaultMode", 0o644)))
            mounts[vm["mountPath"]] = local
        self.mounts = mounts

        # Paths under a mount (alone or in a comma-separated list) point into the work directory; one pass,
        # longest mount path first, so a rewritten path is not rewritten again.
        alternation = "|".join(re.escape(m.rstrip("/")) for m in sorted(mounts, key=len, reverse=True))
        mount_re = re.compile(rf"(?<![^,=:\s])({alternation})(?=/|,|$)") if mounts else None
        local_of = {m.rstrip("/"): str(p) for m, p in mounts.items()}
        self.env: dict[str, str] = {}
        for k, v in self.chart_env.items():
            v = wiring.rewrite(component, v)
            if mount_re:
                v = mount_re.sub(lambda m: local_of[m.group(1)], v)
            self.env[k] = v
        if "DATABASE_URL" in self.env and db_url:
            self.env["DATABASE_URL"] = db_url
        self.argv = list(self.c.get("command", [])) + list(self.c.get("args", []))
        self.argv = [expand(a, self.chart_env) for a in self.argv]


# ---------------------------------------------------------------------------------------------------------
# Checks


def binary_for(argv0: str, bin_dir: Path) -> Path:
    return bin_dir / Path(argv0).name


def help_env_vars(binary: Path) -> tuple[set[str], str]:
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    return set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", text)), text


def grpc_serving(port: int, service: str) -> tuple[bool, str]:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return reply.status == health_pb2.HealthCheckResponse.SERVING, status
    except grpc.RpcError as e:
        return False, f"{e.code().name}: {e.details()}"


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def http_json(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, data=data, timeout=15) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


def probe_once(probe: dict, component: str, wiring: Wiring) -> tuple[bool, str]:
    if "grpc" in probe:
        port = wiring.local_port(component, probe["grpc"]["port"])
        return grpc_serving(port, probe["grpc"].get("service", ""))
    if "httpGet" in probe:
        port = wiring.local_port(component, probe["httpGet"]["port"])
        status, body = http_get(port, probe["httpGet"].get("path", "/"), probe.get("timeoutSeconds", 1) + 1)
        return 200 <= status < 400, f"HTTP {status} {body[:120]!r}"
    if "tcpSocket" in probe:
        port = wiring.local_port(component, probe["tcpSocket"]["port"])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True, "connected"
        except OSError as e:
            return False, str(e)
    return False, f"probe kind not supported: {sorted(probe)}"


def probe_port(probe: dict):
    for kind in ("grpc", "httpGet", "tcpSocket"):
        if kind in probe:
            return probe[kind]["port"]
    return None


def static_checks(rendered: Rendered, wiring: Wiring, report: Report) -> None:
    section("ports: Services, NetworkPolicies, probes and scrape annotations name declared container ports")
    for name, svc in rendered.by_kind.get("Service", {}).items():
        pods = rendered.pods_selected(svc["spec"]["selector"])
        if not report.check(len(pods) == 1, f"Service {name} selects one Deployment", f"selects {[c for c, _ in pods]}"):
            continue
        component = pods[0][0]
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            report.check(wiring.port_name(component, target) is not None,
                         f"Service {name} port {p['name']} -> {component} port {target!r}")
    for name, np in rendered.by_kind.get("NetworkPolicy", {}).items():
        for component, _ in rendered.pods_selected(np["spec"]["podSelector"]["matchLabels"]):
            for rule in np["spec"].get("ingress", []):
                for p in rule.get("ports", []):
                    report.check(wiring.port_name(component, p["port"]) is not None,
                                 f"NetworkPolicy {name} port {p['port']!r} is a {component} container port")
                for peer in rule.get("from", []):
                    sel = (peer.get("podSelector") or {}).get("matchLabels")
                    if sel and "namespaceSelector" not in peer and sel.get("app.kubernetes.io/component") in COMPONENTS:
                        report.check(bool(rendered.pods_selected(sel)),
                                     f"NetworkPolicy {name} peer {sel['app.kubernetes.io/component']} selects pods")
    for c in COMPONENTS:
        tpl = rendered.deployment(c)["spec"]["template"]
        container = tpl["spec"]["containers"][0]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            if kind in container:
                port = probe_port(container[kind])
                report.check(wiring.port_name(c, port) is not None, f"{c} {kind} port {port!r} is declared")
        ann = tpl["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") == "true":
            report.check(wiring.port_name(c, int(ann.get("prometheus.io/port", 0))) is not None,
                         f"{c} prometheus.io/port {ann.get('prometheus.io/port')} is declared")


def configmap_env(rendered: Rendered, component: str) -> dict[str, str]:
    """The env a component's container gets from its ConfigMaps (no Secrets, no rewriting)."""
    container = rendered.deployment(component)["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            data = rendered.get("ConfigMap", src["configMapRef"]["name"]).get("data") or {}
            env.update({src.get("prefix", "") + k: str(v) for k, v in data.items()})
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
    return env


def admin_checks(rendered: Rendered, wiring: Wiring, report: Report) -> None:
    """Every component's admin port is what ADMIN_ADDR listens on, what the probes that need it and the
    scrape annotation use, and what only the scrapers (and the test pod) reach; the gateway's readiness is
    there, never on its public port."""
    section("admin ports: ADMIN_ADDR, probes, scrape annotations, NetworkPolicies")
    for c in COMPONENTS:
        admin = wiring.container_ports[c].get("admin")
        if not report.check(admin is not None, f"{c} declares an admin container port"):
            continue
        addr = configmap_env(rendered, c).get("ADMIN_ADDR", "")
        m = LISTEN_RE.match(addr)
        report.check(m is not None and int(m.group(1)) == admin,
                     f"{c}: ADMIN_ADDR {addr!r} listens on the admin port {admin}")
        tpl = rendered.deployment(c)["spec"]["template"]
        container = tpl["spec"]["containers"][0]
        ann = tpl["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") == "true":
            report.check(wiring.port_name(c, int(ann.get("prometheus.io/port", 0))) == "admin",
                         f"{c}: prometheus.io/port {ann.get('prometheus.io/port')} is the admin port")
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind, {})
            path = probe.get("httpGet", {}).get("path")
            if path in ("/readyz", "/livez", "/metrics"):
                report.check(wiring.port_name(c, probe_port(probe)) == "admin",
                             f"{c}: {kind} GET {path} is on the admin port")
        if c == "gateway":
            readiness = container.get("readinessProbe", {}).get("httpGet", {})
            report.check(readiness.get("path") == "/readyz" and wiring.port_name(c, readiness.get("port")) == "admin",
                         "gateway: readinessProbe is GET /readyz on the admin port", f"{readiness}")
        for name, np in rendered.by_kind.get("NetworkPolicy", {}).items():
            if c not in [comp for comp, _ in rendered.pods_selected(np["spec"]["podSelector"]["matchLabels"])]:
                continue
            rules = np["spec"].get("ingress", [])
            admin_rules = [r for r in rules if any(wiring.port_name(c, p["port"]) == "admin" for p in r.get("ports", []))]
            if not report.check(bool(admin_rules), f"NetworkPolicy {name}: a rule admits the admin port"):
                continue
            report.check(all(r.get("from") and len(r.get("ports", [])) == 1 for r in admin_rules),
                         f"NetworkPolicy {name}: the admin port only from named peers, in rules of its own")
            scrapers = [peer for r in admin_rules for peer in r["from"] if "namespaceSelector" in peer]
            report.check(bool(scrapers), f"NetworkPolicy {name}: the scrapers (metrics.scrapeFrom) reach the admin port")
            others = [r for r in rules if r not in admin_rules]
            report.check(all(peer not in r.get("from", []) for r in others for peer in scrapers),
                         f"NetworkPolicy {name}: the scrapers reach no other port")


def forwarding_checks(rendered: Rendered, report: Report) -> None:
    """The gateway and both services read FORWARDING_SECRET from one Secret key, so the services believe
    the client address the gateway tells them (their password throttle counts by it)."""
    section("forwarding secret: one Secret key for the gateway and the services")
    refs = {}
    for c in COMPONENTS:
        container = rendered.deployment(c)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        ref = env.get("FORWARDING_SECRET", {}).get("valueFrom", {}).get("secretKeyRef")
        if report.check(ref is not None, f"{c}: FORWARDING_SECRET comes from a Secret", f"{env.get('FORWARDING_SECRET')}"):
            refs[c] = (ref["name"], ref["key"])
    report.check(len(set(refs.values())) == 1 and len(refs) == len(COMPONENTS),
                 "gateway, user and auth share one FORWARDING_SECRET", f"{refs}")
    for name, key in set(refs.values()):
        if name in rendered.by_kind.get("Secret", {}):
            value = rendered.secret_data(name).get(key, b"")
            report.check(len(value) >= 32, f"Secret {name} key {key} holds at least 32 characters", f"{len(value)}")


def env_source(rendered: Rendered, component: str, var: str) -> tuple | None:
    """Where a component's container gets `var`: ("value", v) from its ConfigMaps or env, ("secret", name,
    key) from a secretKeyRef, or None."""
    container = rendered.deployment(component)["spec"]["template"]["spec"]["containers"][0]
    for e in container.get("env", []):
        if e["name"] == var:
            if "value" in e:
                return ("value", str(e["value"]))
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            return ("secret", ref["name"], ref["key"]) if ref else ("other", str(e.get("valueFrom")))
    env = configmap_env(rendered, component)
    return ("value", env[var]) if var in env else None


# The auth service's key files, the PEM labels it takes in each (SIGNING_KEY_FILE: Ed25519 as PKCS#8;
# OIDC_RSA_KEY_FILE: PKCS#8 or PKCS#1; OIDC_EC_KEY_FILE: PKCS#8 or SEC1, as Helm's genPrivateKey "ecdsa" writes).
AUTH_KEY_FILES = {
    "SIGNING_KEY_FILE": ("PRIVATE KEY",),
    "OIDC_RSA_KEY_FILE": ("PRIVATE KEY", "RSA PRIVATE KEY"),
    "OIDC_EC_KEY_FILE": ("PRIVATE KEY", "EC PRIVATE KEY"),
}
PUBLIC_URL_RE = re.compile(r"^https?://(?P<host>\[[^\]]+\]|[^:/?#\s]+)(?::\d+)?(?:/[^?#\s]*[^/?#\s])?$")


def oidc_checks(rendered: Rendered, report: Report) -> None:
    """The OpenID Connect provider's wiring: the auth service has an issuer (PUBLIC_URL), and its signing key
    and ID-token keys are files from a Secret (so every replica signs with the same keys, and they outlive
    pods; unset, each pod would generate keys of its own into its emptyDir), holding PEM text of a kind the
    service takes; behind an Ingress, the issuer's host is an Ingress host that routes the provider's paths."""
    section("OpenID Connect: PUBLIC_URL, the signing and ID-token keys from Secrets, the Ingress routes /oauth2")
    env = configmap_env(rendered, "auth")
    issuer = env.get("PUBLIC_URL", "")
    m = PUBLIC_URL_RE.match(issuer)
    report.check(m is not None, "auth: PUBLIC_URL is http(s)://host[:port][/path], no trailing slash", repr(issuer))
    tpl = rendered.deployment("auth")["spec"]["template"]["spec"]
    container = tpl["containers"][0]
    volumes = {v["name"]: v for v in tpl.get("volumes", [])}
    for var, labels in AUTH_KEY_FILES.items():
        path = env.get(var, "")
        found = None
        for vm in container.get("volumeMounts", []):
            secret = volumes.get(vm["name"], {}).get("secret")
            mount = vm["mountPath"].rstrip("/") + "/"
            if secret and path.startswith(mount):
                items = secret.get("items")
                rel = path[len(mount):]
                key = next((it["key"] for it in items if it["path"] == rel), None) if items else rel
                if key is not None:
                    found = (secret["secretName"], key)
        if not report.check(found is not None, f"auth: {var} is a file from a Secret", repr(path)):
            continue
        name, key = found
        if name in rendered.by_kind.get("Secret", {}):
            pem = rendered.secret_data(name).get(key, b"").decode(errors="replace")
            report.check(any(f"-----BEGIN {label}-----" in pem for label in labels),
                         f"auth: {var}: Secret {name} key {key} holds a {' or '.join(labels)} PEM")
        else:
            report.ok(f"auth: {var}: Secret {name} key {key} (not the chart's: created beforehand)")
    for name, ing in rendered.by_kind.get("Ingress", {}).items():
        if not m:
            continue
        host = m.group("host")
        rules = [r for r in ing["spec"].get("rules", []) if r.get("host") == host]
        if not report.check(bool(rules), f"Ingress {name} has the issuer's host {host}",
                            f"hosts {[r.get('host') for r in ing['spec'].get('rules', [])]}"):
            continue
        paths = [p["path"] for r in rules for p in r.get("http", {}).get("paths", [])]
        for needed in ("/.well-known/openid-configuration", "/oauth2/authorize", "/api/v1"):
            report.check(any(needed == p or needed.startswith(p.rstrip("/") + "/") for p in paths),
                         f"Ingress {name} routes {needed} on {host}", f"paths {paths}")


def factor_checks(rendered: Rendered, report: Report) -> bool:
    """Second factors' wiring: the user service's FACTOR_KEY_FILE (user.factorKey), when set, is a file from a
    Secret, and a Secret the chart renders holds 32 bytes of base64; FACTOR_KEY is in no ConfigMap;
    ADMINS_NEED_SECOND_FACTOR is true or false, alike for the three. True if the user service has a key."""
    section("second factors: FACTOR_KEY_FILE from a Secret, ADMINS_NEED_SECOND_FACTOR alike for the three")
    for c in COMPONENTS:
        report.check(env_source(rendered, c, "FACTOR_KEY") is None, f"{c}: FACTOR_KEY is not set (a file from a Secret instead)",
                     f"{env_source(rendered, c, 'FACTOR_KEY')}")
    admins = {c: env_source(rendered, c, "ADMINS_NEED_SECOND_FACTOR") for c in COMPONENTS}
    report.check(len(set(admins.values())) == 1 and admins["user"] in (("value", "true"), ("value", "false")),
                 "ADMINS_NEED_SECOND_FACTOR: one value, true or false, for gateway, user and auth", f"{admins}")
    env = configmap_env(rendered, "user")
    path = env.get("FACTOR_KEY_FILE")
    if path is None:
        report.ok("user: no FACTOR_KEY_FILE (user.factorKey: neither existingSecret nor generate): TOTP off")
        return False
    tpl = rendered.deployment("user")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in tpl.get("volumes", [])}
    found = None
    for vm in tpl["containers"][0].get("volumeMounts", []):
        secret = volumes.get(vm["name"], {}).get("secret")
        mount = vm["mountPath"].rstrip("/") + "/"
        if secret and path.startswith(mount):
            items = secret.get("items")
            rel = path[len(mount):]
            key = next((it["key"] for it in items if it["path"] == rel), None) if items else rel
            if key is not None:
                found = (secret["secretName"], key)
    if not report.check(found is not None, "user: FACTOR_KEY_FILE is a file from a Secret", repr(path)):
        return True
    name, key = found
    if name in rendered.by_kind.get("Secret", {}):
        raw = rendered.secret_data(name).get(key, b"").strip()
        try:
            n = len(base64.b64decode(raw, validate=True))
        except ValueError:
            n = -1
        report.check(n == 32, f"user: FACTOR_KEY_FILE: Secret {name} key {key} holds 32 bytes as base64", f"{n} bytes")
    else:
        report.ok(f"user: FACTOR_KEY_FILE: Secret {name} key {key} (not the chart's: created beforehand)")
    return True


NATS_URL_RE = re.compile(r"^(?:nats|tls|ws|wss)://(?:[^@/]*@)?(?P<host>\[[^\]]+\]|[^:/,]+)(?::(?P<port>\d+))?")


def egress_rules(rendered: Rendered, component: str) -> list[dict] | None:
    """The egress rules that apply to a component's pods (the union over the NetworkPolicies with Egress in
    their policyTypes that select them), or None if none restricts its egress."""
    rules, restricted = [], False
    for np in rendered.by_kind.get("NetworkPolicy", {}).values():
        if component not in [c for c, _ in rendered.pods_selected(np["spec"]["podSelector"].get("matchLabels", {}))]:
            continue
        if "Egress" in np["spec"].get("policyTypes", []):
            restricted = True
            rules += np["spec"].get("egress") or []
    return rules if restricted else None


def egress_admits(rules: list[dict], port: int, protocol: str = "TCP", peer: dict | None = None) -> bool:
    """Whether some rule admits `protocol`/`port` (to `peer`'s pods when given: a podSelector peer with the
    same labels, or a rule with no `to`)."""
    for r in rules:
        ports = r.get("ports")
        if ports and not any(p.get("protocol", "TCP") == protocol and p.get("port") == port for p in ports):
            continue
        to = r.get("to")
        if peer is None or not to:
            return True
        if any((t.get("podSelector") or {}).get("matchLabels") == peer and "namespaceSelector" not in t for t in to):
            return True
    return False


def events_checks(rendered: Rendered, wiring: Wiring, report: Report) -> bool:
    """NATS_URL for all three or none, from one source; ACCESS_TOKEN_TTL_SECS alike for all three; restricted
    egress admits NATS (and DNS and the services each component calls). True if the chart sets NATS."""
    section("events: NATS_URL and ACCESS_TOKEN_TTL_SECS alike for the three; egress admits NATS")
    nats = {c: env_source(rendered, c, "NATS_URL") for c in COMPONENTS}
    with_nats = [c for c, src in nats.items() if src]
    report.check(len(with_nats) in (0, len(COMPONENTS)), "NATS_URL is set for all three components or for none",
                 f"set for {with_nats}")
    report.check(len({src for src in nats.values()}) == 1, "NATS_URL: one value or one Secret key for all three", f"{nats}")
    if with_nats:
        print(f"  NATS: {nats[with_nats[0]]}")
    else:
        print("  no NATS_URL: each pod on its in-process bus (events and revocations stay inside the pod)")
    ttl = {c: env_source(rendered, c, "ACCESS_TOKEN_TTL_SECS") for c in COMPONENTS}
    report.check(all(ttl.values()) and len(set(ttl.values())) == 1,
                 "ACCESS_TOKEN_TTL_SECS: one value for gateway, user and auth", f"{ttl}")
    for c in COMPONENTS:
        for var in ("EVENTS_MAX_AGE_SECS", "EVENTS_REPLICAS"):
            src = env_source(rendered, c, var)
            if src and src != env_source(rendered, COMPONENTS[0], var):
                report.fail(f"{c}: {var} {src} differs from {COMPONENTS[0]}'s")

    for c in COMPONENTS:
        rules = egress_rules(rendered, c)
        if rules is None:
            if with_nats:
                report.ok(f"{c}: egress not restricted by any NetworkPolicy (NATS reachable)")
            continue
        report.check(egress_admits(rules, 53, "UDP") and egress_admits(rules, 53, "TCP"), f"{c}: egress admits DNS (UDP and TCP 53)")
        for var, value in sorted(configmap_env(rendered, c).items()):
            for m in re.finditer(r"(?:^|[/@,=])([a-z0-9][-a-z0-9.]*):(\d+)", value):
                svc = wiring.hosts.get(m.group(1))
                if svc is None:
                    continue
                pods = rendered.pods_selected(svc["spec"]["selector"])
                target = next((p.get("targetPort", p["port"]) for p in svc["spec"]["ports"] if p["port"] == int(m.group(2))), None)
                if not pods or target is None:
                    continue  # static_checks reports these
                callee, number = pods[0][0], wiring.container_ports[pods[0][0]].get(wiring.port_name(pods[0][0], target) or "")
                labels = rendered.deployment(callee)["spec"]["template"]["metadata"]["labels"]
                selector = {k: labels[k] for k in svc["spec"]["selector"]}
                report.check(number is not None and egress_admits(rules, number, "TCP", selector),
                             f"{c}: egress admits {var} ({m.group(1)}:{m.group(2)} -> {callee} pods, port {number})")
        if with_nats:
            src = nats[c]
            m = NATS_URL_RE.match(src[1]) if src[0] == "value" else None
            port = int(m.group("port") or 4222) if m else 4222
            report.check(egress_admits(rules, port), f"{c}: egress admits NATS (TCP {port}"
                         f"{'' if m else ', the default: the URL is in a Secret'})")
    return bool(with_nats)


class NatsServer:
    """A nats-server with JetStream of this run's own: free client and monitoring ports, a temporary store."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port, self.monitor = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = workdir / "nats-store"
        store.mkdir(parents=True)
        self.log = workdir / "nats-server.log"
        self.proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor),
                                      "-sd", str(store)], stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LookupError(f"nats-server exited with {self.proc.returncode}: {self.log.read_text()[-1000:]}")
            status, _ = http_get(self.monitor, "/healthz?js-enabled-only=true")
            if status == 200:
                return
            time.sleep(0.2)
        raise LookupError(f"nats-server: no JetStream health at 127.0.0.1:{self.monitor} within 15s")

    def jsz(self) -> dict:
        status, body = http_get(self.monitor, "/jsz?streams=true&consumers=true&config=true", timeout=5)
        if status != 200:
            raise LookupError(f"nats-server /jsz: HTTP {status}")
        return json.loads(body)

    def streams(self) -> dict[str, dict]:
        return {s["name"]: s for a in self.jsz().get("account_details") or [] for s in a.get("stream_detail") or []}

    def client_names(self) -> list[str]:
        status, body = http_get(self.monitor, "/connz?limit=1024", timeout=5)
        if status != 200:
            raise LookupError(f"nats-server /connz: HTTP {status}")
        return [c.get("name", "") for c in json.loads(body).get("connections") or []]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nats_binary(given: str) -> str:
    for b in (given, shutil.which("nats-server") or "", "/usr/sbin/nats-server"):
        if b and Path(b).is_file():
            return b
    raise LookupError("the render sets NATS_URL, but there is no nats-server (apt-get install nats-server, or "
                      "NATS_SERVER_BIN / --nats-server)")


REDIS_URL_RE = re.compile(r"^(?P<scheme>rediss?)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
                          r"(?P<host>\[[^\]]+\]|[^:/@]+)(?::(?P<port>\d+))?(?:/(?P<db>\d+))?")
REDIS_COMPONENTS = ("gateway", "user")  # the auth service does not read Redis


def redact(value: str) -> str:
    """`value` with the userinfo of any URL in it (passwords) replaced by <secret>."""
    return re.sub(r"(://)[^@/\s,]*@", r"\1<secret>@", value)


def redis_checks(rendered: Rendered, report: Report) -> bool:
    """REDIS_URL for the gateway and the user service or neither, from one source, never for the auth
    service; REDIS_TIMEOUT_MS alike; USER_CACHE_TTL_SECS on the user service only; restricted egress admits
    Redis for the two. True if the chart sets Redis."""
    section("shared state: REDIS_URL of the gateway and the user service (never auth); egress admits Redis")
    srcs = {c: env_source(rendered, c, "REDIS_URL") for c in COMPONENTS}
    with_redis = [c for c in REDIS_COMPONENTS if srcs[c]]
    report.check(len(with_redis) in (0, len(REDIS_COMPONENTS)), "REDIS_URL is set for the gateway and the user service or for neither",
                 f"set for {with_redis}")
    report.check(len({srcs[c] for c in REDIS_COMPONENTS}) == 1, "REDIS_URL: one value or one Secret key for both",
                 redact(f"{ {c: srcs[c] for c in REDIS_COMPONENTS} }"))
    for var in ("REDIS_URL", "REDIS_TIMEOUT_MS", "REDIS_CONNECT_TIMEOUT_MS", "REDIS_KEY_PREFIX", "USER_CACHE_TTL_SECS"):
        report.check(env_source(rendered, "auth", var) is None, f"auth: {var} not set (the auth service does not read Redis)")
    report.check(env_source(rendered, "gateway", "USER_CACHE_TTL_SECS") is None, "gateway: USER_CACHE_TTL_SECS not set (the user service's)")
    timeouts = {c: env_source(rendered, c, "REDIS_TIMEOUT_MS") for c in REDIS_COMPONENTS}
    report.check(len(set(timeouts.values())) == 1, "REDIS_TIMEOUT_MS: alike for the gateway and the user service", f"{timeouts}")
    if with_redis:
        print(f"  Redis: {redact(str(srcs[with_redis[0]]))}")
    else:
        print("  no REDIS_URL: per-pod rate buckets, no user cache")
        return False
    for c in REDIS_COMPONENTS:
        rules = egress_rules(rendered, c)
        if rules is None:
            report.ok(f"{c}: egress not restricted by any NetworkPolicy (Redis reachable)")
            continue
        src = srcs[c]
        m = REDIS_URL_RE.match(src[1]) if src[0] == "value" else None
        port = int(m.group("port") or 6379) if m else 6379
        report.check(egress_admits(rules, port), f"{c}: egress admits Redis (TCP {port}"
                     f"{'' if m else ', the default: the URL is in a Secret'})")
    return True


class Resp:
    """A minimal RESP2 client (AUTH, SELECT, SCAN, PSUBSCRIBE): no Redis library needed."""

    def __init__(self, port: int, password: str | None, user: str | None = None, db: int = 0, timeout: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = self.sock.makefile("rb")
        if password is not None:
            self.command(*(["AUTH", user, password] if user else ["AUTH", password]))
        if db:
            self.command("SELECT", str(db))

    def send(self, *args: str) -> None:
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(b), b)
        self.sock.sendall(out)

    def read(self):
        line = self.buf.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise LookupError(f"Redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.buf.read(n + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise LookupError(f"Redis: unexpected reply {line[:40]!r}")

    def command(self, *args: str):
        self.send(*args)
        return self.read()

    def scan(self, pattern: str) -> list[str]:
        cursor, keys = "0", []
        while True:
            cursor, batch = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            keys += batch
            if cursor == "0":
                return sorted(set(keys))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RedisServer:
    """A redis-server of this run's own: a free port, no persistence, the chart URL's password (from a config
    file of mode 0600), keyspace notifications on (so a watcher sees keys that expire within milliseconds)."""

    def __init__(self, binary: str, workdir: Path, password: str | None, user: str | None, db: int) -> None:
        self.port, self.password, self.user, self.db = free_port(), password, user, db
        conf = workdir / "redis.conf"
        lines = [f"port {self.port}", "bind 127.0.0.1", 'save ""', "appendonly no", f"dir {workdir}",
                 "notify-keyspace-events KA", f"databases {max(16, db + 1)}"]
        if password is not None:
            if user and user != "default":
                lines += [f"user {user} on >{password} ~* &* +@all"]
            else:
                lines += [f"requirepass {password}"]
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        self.log = workdir / "redis-server.log"
        self.proc = subprocess.Popen([binary, str(conf)], stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.seen: set[str] = set()
        self._watcher: Resp | None = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LookupError(f"redis-server exited with {self.proc.returncode}: {self.log.read_text()[-1000:]}")
            try:
                c = self.client()
                ok = c.command("PING") == "PONG"
                c.close()
                if ok:
                    return
            except (OSError, LookupError, ConnectionError):
                pass
            time.sleep(0.1)
        raise LookupError(f"redis-server: no PONG at 127.0.0.1:{self.port} within 15s")

    def client(self) -> Resp:
        return Resp(self.port, self.password, self.user, self.db)

    def url(self) -> str:
        auth = ""
        if self.password is not None:
            auth = f"{self.user or ''}:{self.password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/{self.db}"

    def watch(self, prefix: str) -> None:
        """Record every key under `prefix` that any command touches from now on (keyspace notifications)."""
        w = self.client()
        w.command("PSUBSCRIBE", f"__keyspace@{self.db}__:{prefix}*")
        w.sock.settimeout(None)
        self._watcher = w
        channel_prefix = f"__keyspace@{self.db}__:"

        def run() -> None:
            try:
                while True:
                    msg = w.read()
                    if isinstance(msg, list) and len(msg) == 4 and msg[0] == "pmessage":
                        self.seen.add(msg[2][len(channel_prefix):])
            except (OSError, ConnectionError, LookupError, ValueError):
                return

        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def redis_binary(given: str) -> str:
    for b in (given, shutil.which("redis-server") or "", "/usr/bin/redis-server"):
        if b and Path(b).is_file():
            return b
    raise LookupError("the render sets REDIS_URL, but there is no redis-server (apt-get install redis-server, or "
                      "REDIS_SERVER_BIN / --redis-server)")


# The user service's mail settings (user.mail): no other component reads them (the gateway reads
# BRANDING_PRODUCT_NAME for its pages, and the auth service PUBLIC_URL as its issuer: both are theirs too).
MAIL_ONLY_VARS = ("SMTP_URL", "MAIL_FROM", "MAIL_DIR", "MAIL_SEND_TIMEOUT_SECS", "MAIL_GIVE_UP_AFTER_SECS",
                  "EMAIL_VERIFICATION", "REQUIRE_VERIFIED_EMAIL", "EMAIL_VERIFICATION_TTL_SECS", "PASSWORD_RESET_TTL_SECS",
                  "EMAIL_CHANGE_REVERT_TTL_SECS", "MAIL_LINKS_PER_HOUR", "MAIL_NOTICE_PASSWORD_CHANGED",
                  "MAIL_NOTICE_EMAIL_CHANGED", "MAIL_NOTICE_NEW_SIGN_IN", "MAIL_NOTICE_ACCOUNT_LOCKED")
SMTP_URL_RE = re.compile(r"^(?P<scheme>smtps?)://(?:[^@/\s]*@)?(?P<host>\[[^\]]+\]|[^:/?#\s]+)(?::(?P<port>\d+))?/?(?P<query>\?\S*)?$")


def smtp_port(m: re.Match) -> int:
    """The port lettre connects to for an SMTP URL: the URL's, else 465 (smtps), 587 (?tls=required), 25."""
    if m.group("port"):
        return int(m.group("port"))
    if m.group("scheme") == "smtps":
        return 465
    return 587 if "tls=required" in (m.group("query") or "") else 25


def mail_checks(rendered: Rendered, report: Report) -> bool:
    """The user service's mail wiring: PUBLIC_URL (the links' base) an http(s) URL equal to the auth service's
    (the issuer); SMTP_URL only from a Secret (it may hold a password), an smtp(s):// URL where the chart holds
    it; without SMTP, MAIL_DIR on an emptyDir (the root file system is read-only); the mail settings on the
    user service only; restricted egress admits the SMTP server's port. True if the chart sets SMTP_URL."""
    section("mail: the user service's PUBLIC_URL is the issuer, SMTP_URL from a Secret or MAIL_DIR on an emptyDir, egress to SMTP")
    user_env, auth_env = configmap_env(rendered, "user"), configmap_env(rendered, "auth")
    link_base = user_env.get("PUBLIC_URL", "")
    report.check(PUBLIC_URL_RE.match(link_base) is not None,
                 "user: PUBLIC_URL (the base of the links in mail) is http(s)://host[:port][/path], no trailing slash", repr(link_base))
    report.check(link_base == auth_env.get("PUBLIC_URL"), "user: PUBLIC_URL is the auth service's (the issuer)",
                 f"user {link_base!r}, auth {auth_env.get('PUBLIC_URL')!r}")
    for c in ("auth", "gateway"):
        stray = [v for v in MAIL_ONLY_VARS if env_source(rendered, c, v) is not None]
        report.check(not stray, f"{c}: no mail settings (the user service's)", f"{stray}")
    smtp = env_source(rendered, "user", "SMTP_URL")
    tpl = rendered.deployment("user")["spec"]["template"]["spec"]
    if smtp is None:
        print("  no SMTP_URL: the development mailbox (MAIL_DIR), no mail leaves the pods")
        mail_dir = user_env.get("MAIL_DIR", "")
        volumes = {v["name"]: v for v in tpl.get("volumes", [])}
        mounts = [vm for vm in tpl["containers"][0].get("volumeMounts", [])
                  if mail_dir == vm["mountPath"].rstrip("/") or mail_dir.startswith(vm["mountPath"].rstrip("/") + "/")]
        report.check(mail_dir.startswith("/") and any("emptyDir" in volumes.get(vm["name"], {}) and not vm.get("readOnly")
                                                      for vm in mounts),
                     "user: without SMTP_URL, MAIL_DIR is on a writable emptyDir (the root file system is read-only)",
                     f"MAIL_DIR {mail_dir!r}, mounts {[vm['mountPath'] for vm in mounts]}")
        return False
    if not report.check(smtp[0] == "secret", "user: SMTP_URL comes from a Secret (it may hold a password)", f"{smtp[0]}"):
        return True
    _, name, key = smtp
    port = None
    if name in rendered.by_kind.get("Secret", {}):
        url = rendered.secret_data(name).get(key, b"").decode(errors="replace")
        m = SMTP_URL_RE.match(url)
        if report.check(m is not None, f"user: SMTP_URL in Secret {name} key {key} is smtp(s)://[user:password@]host[:port]",
                        redact(url)):
            port = smtp_port(m)
            print(f"  SMTP: {redact(url)} (port {port})")
    else:
        report.ok(f"user: SMTP_URL from Secret {name} key {key} (not the chart's: created beforehand)")
    report.check("MAIL_DIR" not in user_env, "user: no MAIL_DIR beside SMTP_URL (the development mailbox is unused)")
    rules = egress_rules(rendered, "user")
    if rules is None:
        report.ok("user: egress not restricted by any NetworkPolicy (the SMTP server reachable)")
    elif port is not None:
        report.check(egress_admits(rules, port), f"user: egress admits the SMTP server (TCP {port})")
    else:
        print("  user: the SMTP URL is in a Secret the chart does not render: its port is not checked against the egress")
    return True


class SmtpSink:
    """A minimal SMTP server of this run's own (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH)
    that keeps every message it is given: (envelope sender, recipients, the message's bytes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            r = conn.makefile("rb")
            conn.sendall(b"220 chart-vs-binaries ESMTP sink\r\n")
            sender, rcpts = "", []
            while True:
                line = r.readline()
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    conn.sendall(b"250-chart-vs-binaries\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n" if verb == "EHLO" else b"250 hello\r\n")
                elif verb == "MAIL":
                    sender, rcpts = cmd[10:].strip(), []
                    conn.sendall(b"250 OK\r\n")
                elif verb == "RCPT":
                    rcpts.append(cmd[8:].strip())
                    conn.sendall(b"250 OK\r\n")
                elif verb == "DATA":
                    conn.sendall(b"354 go on\r\n")
                    data = bytearray()
                    while True:
                        part = r.readline()
                        if not part or part in (b".\r\n", b".\n"):
                            break
                        data += part[1:] if part.startswith(b"..") else part
                    self.messages.append((sender, rcpts, bytes(data)))
                    conn.sendall(b"250 OK queued\r\n")
                elif verb in ("RSET", "NOOP"):
                    if verb == "RSET":
                        sender, rcpts = "", []
                    conn.sendall(b"250 OK\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 not implemented\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self.sock.close()


def mail_text(raw: bytes) -> tuple[email.message.EmailMessage, str]:
    """A message and its text parts, decoded (quoted-printable or base64 alike)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [part.get_content() for part in msg.walk() if part.get_content_type() in ("text/plain", "text/html")]
    return msg, "\n".join(t for t in texts if isinstance(t, str))


def env_checks(name: str, container: Container, binary: Path, help_vars: set[str], report: Report) -> None:
    for var in sorted(container.chart_env):
        if var in help_vars:
            report.ok(f"{name}: {var} is read by {binary.name} (--help)")
            if var in TEMPORARY_ALLOWLIST:
                report.warn(f"{var} is in {binary.name} --help now: remove it from TEMPORARY_ALLOWLIST in {Path(__file__).name}")
        elif STANDARD_ENV.match(var):
            report.ok(f"{name}: {var} is a standard variable (read outside clap)")
        elif var in TEMPORARY_ALLOWLIST:
            report.warn(f"{name}: {var} is not in {binary.name} --help yet (temporary allowlist: pending change)")
        else:
            report.fail(f"{name}: the chart sets {var}, which {binary.name} does not read (not in --help)")


# ---------------------------------------------------------------------------------------------------------


def psql(pg: str, sql: str) -> None:
    subprocess.run(["psql", f"{pg}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", default=os.environ.get("SUITE_BIN_DIR", str(ROOT / "target/debug")))
    ap.add_argument("--helm", default=os.environ.get("HELM", "helm"))
    ap.add_argument("--postgres", default=os.environ.get("SUITE_PG_URL", "postgres://postgres@127.0.0.1:5432"),
                    help="server URL without database name")
    ap.add_argument("--chart", default=str(ROOT / "k8s/suite"), help="the chart directory")
    ap.add_argument("-f", "--values", action="append", default=[], help="extra helm -f (values file)")
    ap.add_argument("--set", action="append", default=[], help="extra helm --set (values overrides)")
    ap.add_argument("--nats-server", default=os.environ.get("NATS_SERVER_BIN", ""),
                    help="the nats-server binary (default: on the PATH, else /usr/sbin/nats-server)")
    ap.add_argument("--redis-server", default=os.environ.get("REDIS_SERVER_BIN", ""),
                    help="the redis-server binary (default: on the PATH, else /usr/bin/redis-server)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and databases")
    ap.add_argument("--rendered", help="read this `helm template` output instead of rendering the chart")
    ap.add_argument("--static-only", action="store_true", help="only the checks of the rendered objects (no binaries)")
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir).resolve()
    report = Report()

    if args.rendered:
        section(f"read {args.rendered}")
        rendered = Rendered([d for d in yaml.safe_load_all(Path(args.rendered).read_text()) if d])
    else:
        section(f"render {args.chart} (release {RELEASE}, namespace {NAMESPACE})")
        rendered = render(args.helm, args.chart, args.values, args.set)
    print(f"  {len(rendered.docs)} objects")
    wiring = Wiring(rendered)
    for c in COMPONENTS:
        print(f"  {c}: " + ", ".join(f"{n} {wiring.container_ports[c][n]} -> 127.0.0.1:{p}" for n, p in wiring.ports[c].items()))
    static_checks(rendered, wiring, report)
    admin_checks(rendered, wiring, report)
    forwarding_checks(rendered, report)
    oidc_checks(rendered, report)
    nats_in_chart = events_checks(rendered, wiring, report)
    redis_in_chart = redis_checks(rendered, report)
    smtp_in_chart = mail_checks(rendered, report)
    factor_key_in_chart = factor_checks(rendered, report)
    if args.static_only:
        for f in report.failed:
            print(f"failed: {f}")
        print(f"chart_vs_binaries (static): {report.passed} passed, {len(report.failed)} failed")
        return 0 if not report.failed else 1

    workdir = Path(tempfile.mkdtemp(prefix="chart-vs-binaries-"))
    tag = uuid.uuid4().hex[:8]
    databases: dict[str, str] = {}
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    nats: NatsServer | None = None
    redis: RedisServer | None = None
    smtp: SmtpSink | None = None
    try:
        section(f"databases ({args.postgres})")
        for c in ("user", "auth"):
            db = f"chart_{c}_{tag}"
            psql(args.postgres, f'CREATE DATABASE "{db}"')
            databases[c] = db
            print(f"  created {db}")

        containers: dict[str, Container] = {}
        for c in COMPONENTS:
            pod = rendered.deployment(c)["spec"]["template"]["spec"]
            db_url = f"{args.postgres}/{databases[c]}" if c in databases else None
            containers[c] = Container(rendered, wiring, c, pod, workdir / c, db_url)

        if nats_in_chart:
            section("NATS: a nats-server -js of this run's own, for the chart's NATS_URL")
            nats = NatsServer(nats_binary(args.nats_server), workdir)
            logs["nats-server"] = nats.log
            print(f"  {nats.url} (monitoring http://127.0.0.1:{nats.monitor}, store {workdir / 'nats-store'})")
            for c, ct in containers.items():
                if report.check("NATS_URL" in ct.chart_env, f"{c}: the chart sets NATS_URL",
                                "the chart sets NATS for another component"):
                    print(f"    {c}: NATS_URL {ct.chart_env['NATS_URL']} -> {nats.url}")
                    ct.env["NATS_URL"] = nats.url

        if redis_in_chart:
            section("Redis: a redis-server of this run's own, for the chart's REDIS_URL")
            chart_url = next(containers[c].chart_env["REDIS_URL"] for c in REDIS_COMPONENTS if "REDIS_URL" in containers[c].chart_env)
            m = REDIS_URL_RE.match(chart_url)
            if not report.check(m is not None, "the chart's REDIS_URL is redis://[:password@]host[:port][/db]", redact(chart_url)):
                raise LookupError("REDIS_URL not understood")
            password = unquote(m.group("password")) if m.group("password") is not None else None
            user = unquote(m.group("user")) if m.group("user") else None
            redis = RedisServer(redis_binary(args.redis_server), workdir, password, user, int(m.group("db") or 0))
            logs["redis-server"] = redis.log
            print(f"  {redact(redis.url())} (database {redis.db}{', password required' if password else ''})")
            for c, ct in containers.items():
                if c in REDIS_COMPONENTS:
                    if report.check("REDIS_URL" in ct.chart_env, f"{c}: the chart sets REDIS_URL"):
                        print(f"    {c}: REDIS_URL {redact(ct.chart_env['REDIS_URL'])} -> {redact(redis.url())}")
                        ct.env["REDIS_URL"] = redis.url()
                else:
                    report.check("REDIS_URL" not in ct.chart_env, f"{c}: the chart does not set REDIS_URL (it does not read Redis)")
            redis_prefix = containers["gateway"].env.get("REDIS_KEY_PREFIX", "suite:")
            redis.watch(redis_prefix)

        if smtp_in_chart:
            section("SMTP: a sink of this run's own for the chart's SMTP_URL")
            smtp = SmtpSink()
            ct = containers["user"]
            if report.check("SMTP_URL" in ct.chart_env, "user: the chart sets SMTP_URL"):
                # The sink speaks plain SMTP without AUTH: the URL's credentials and TLS are left out.
                print(f"    user: SMTP_URL {redact(ct.chart_env['SMTP_URL'])} -> {smtp.url()} (no TLS, no credentials)")
                ct.env["SMTP_URL"] = smtp.url()

        section("every env var the chart sets is one the binary reads")
        helps: dict[str, tuple[set[str], str]] = {}
        for c, ct in containers.items():
            binary = binary_for(ct.argv[0], bin_dir)
            if not report.check(binary.is_file(), f"{c}: binary {binary} exists (command {ct.argv[0]})"):
                continue
            helps[c] = help_env_vars(binary)
            env_checks(c, ct, binary, helps[c][0], report)
            if c in ("user", "auth") and "DATABASE_URL" in ct.chart_env:
                report.check(ct.chart_env["DATABASE_URL"].startswith(("postgres://", "postgresql://")),
                             f"{c}: the chart's DATABASE_URL is PostgreSQL")

        section("migration Jobs (run first)")
        jobs = [j for j in rendered.by_kind.get("Job", {}).values()
                if "pre-install" in j["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
        report.check(len(jobs) == 2, "a pre-install/pre-upgrade migration Job for each of user and auth", f"found {len(jobs)}")
        for job in jobs:
            pod = job["spec"]["template"]["spec"]
            component = Path(pod["containers"][0]["command"][0]).name.removeprefix("suite-")
            if component not in databases:
                report.fail(f"Job {job['metadata']['name']}: runs {component}, which owns no database")
                continue
            ct = Container(rendered, wiring, component, pod, workdir / f"job-{component}", f"{args.postgres}/{databases[component]}")
            binary = binary_for(ct.argv[0], bin_dir)
            if component in helps:
                env_checks(f"Job {job['metadata']['name']}", ct, binary, helps[component][0], report)
                sub = ct.argv[1] if len(ct.argv) > 1 else ""
                report.check(re.search(rf"^\s+{re.escape(sub)}\s", helps[component][1], re.M) is not None,
                             f"Job {job['metadata']['name']}: subcommand {sub!r} is in {binary.name} --help")
            run = subprocess.run([str(binary), *ct.argv[1:]], env={"PATH": os.environ.get("PATH", ""), **ct.env},
                                 cwd=workdir, capture_output=True, text=True, timeout=120)
            report.check(run.returncode == 0, f"Job {job['metadata']['name']}: {' '.join(ct.argv)} exits 0",
                         f"exit {run.returncode}: {run.stderr[-2000:]}")

        section("start the binaries with the chart's wiring")
        for c in COMPONENTS:  # user, auth, gateway: the order of dependencies (the services cope with any)
            ct = containers[c]
            binary = binary_for(ct.argv[0], bin_dir)
            if not binary.is_file():
                continue
            logs[c] = workdir / f"{c}.log"
            cwd = workdir / c / "cwd"
            cwd.mkdir(parents=True, exist_ok=True)
            shown = {k: ("<secret>" if k == "DATABASE_URL" else redact(v)) for k, v in sorted(ct.env.items())}
            print(f"  {c}: {' '.join(ct.argv)}\n    env: " + " ".join(f"{k}={v}" for k, v in shown.items()))
            procs[c] = subprocess.Popen([str(binary), *ct.argv[1:]], env={"PATH": os.environ.get("PATH", ""), **ct.env},
                                        cwd=cwd, stdout=logs[c].open("wb"), stderr=subprocess.STDOUT)

        section("readiness and liveness probes on the mapped ports")
        for c in COMPONENTS:
            if c not in procs:
                continue
            container = containers[c].c
            admin_pending = "ADMIN_ADDR" in containers[c].chart_env and "ADMIN_ADDR" not in helps.get(c, (set(), ""))[0]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind)
                if not probe:
                    continue
                port = probe_port(probe)
                pname = wiring.port_name(c, port)
                desc = f"{c} {kind} ({'grpc' if 'grpc' in probe else 'http ' + probe.get('httpGet', {}).get('path', '')} on {pname} -> 127.0.0.1:{wiring.local_port(c, port)})"
                if admin_pending and pname == "admin":
                    report.warn(f"{desc}: not probed, {c} does not read ADMIN_ADDR yet (pending change)")
                    continue
                deadline = time.monotonic() + PROBE_TIMEOUT_SECS
                ok, detail = False, ""
                while time.monotonic() < deadline:
                    if procs[c].poll() is not None:
                        detail = f"process exited with {procs[c].returncode}"
                        break
                    ok, detail = probe_once(probe, c, wiring)
                    if ok:
                        break
                    time.sleep(0.5)
                report.check(ok, desc, detail)

        section("metrics (Prometheus scrape annotations)")
        for c in COMPONENTS:
            ann = rendered.deployment(c)["spec"]["template"]["metadata"].get("annotations", {})
            if ann.get("prometheus.io/scrape") != "true" or c not in procs:
                continue
            pname = wiring.port_name(c, int(ann["prometheus.io/port"]))
            if pname is None:
                continue
            path = ann.get("prometheus.io/path", "/metrics")
            if pname == "admin" and "ADMIN_ADDR" not in helps.get(c, (set(), ""))[0]:
                report.warn(f"{c}: {path} on the admin port not checked: ADMIN_ADDR pending")
                continue
            status, body = http_get(wiring.ports[c][pname], path)
            what = f"{c}: GET {path} on {pname} -> 127.0.0.1:{wiring.ports[c][pname]}"
            if status == 200 and b"# TYPE" in body:
                report.ok(what)
            else:
                report.fail(f"{what}: HTTP {status}")

        section("the gateway's public port serves no operator paths; its admin port does")
        if "gateway" in procs and "admin" in wiring.ports["gateway"]:
            gw, gw_admin = wiring.ports["gateway"]["http"], wiring.ports["gateway"]["admin"]
            status, _ = http_get(gw, "/api/health")
            report.check(status == 200, f"gateway: GET /api/health on http -> 200", f"HTTP {status}")
            for path in ("/metrics", "/readyz", "/livez"):
                status, _ = http_get(gw, path)
                report.check(status == 404, f"gateway: GET {path} on http -> 404", f"HTTP {status}")
            for path in ("/readyz", "/livez", "/metrics"):
                status, _ = http_get(gw_admin, path)
                report.check(status == 200, f"gateway: GET {path} on admin -> 200", f"HTTP {status}")

        section("REST through the gateway: register, log in, read yourself")
        token, me = None, {}
        if "gateway" in procs:
            gw = wiring.ports["gateway"]["http"]
            name = f"chart{tag}"
            password = "analytical engine 1843 " + tag
            status, body = http_json(gw, "POST", "/api/v1/users", {"username": name, "email": f"{name}@example.com", "password": password})
            report.check(status == 201, "POST /api/v1/users -> 201 Created", f"HTTP {status} {body}")
            status, body = http_json(gw, "POST", "/api/v1/auth/login", {"login": name, "password": password})
            token = body.get("accessToken")
            report.check(status == 200 and bool(token) and bool(body.get("refreshToken")),
                         "POST /api/v1/auth/login -> 200 with access and refresh tokens", f"HTTP {status} {body}")
            if token:
                status, body = http_json(gw, "GET", "/api/v1/users/me", token=token)
                me = body if status == 200 else {}
                report.check(status == 200 and body.get("username") == name,
                             "GET /api/v1/users/me with the token -> 200, the new user (JWKS wiring)", f"HTTP {status} {body}")
                # Second factors: with the chart's FACTOR_KEY_FILE an authenticator app can be set up (the key
                # read and taken); without one, the service says they are off.
                status, body = http_json(gw, "POST", "/api/v1/users/me/factors:enrollTotp", {"name": "chart"}, token=token)
                if factor_key_in_chart:
                    report.check(status == 200 and str(body.get("otpauthUri", "")).startswith("otpauth://totp/"),
                                 "POST /api/v1/users/me/factors:enrollTotp -> 200 with an otpauth:// URI (FACTOR_KEY_FILE wiring)",
                                 f"HTTP {status} {body}")
                else:
                    report.check(status == 400 and "FACTOR_KEY" in json.dumps(body),
                                 "POST /api/v1/users/me/factors:enrollTotp -> 400, second factors off (no FACTOR_KEY_FILE)",
                                 f"HTTP {status} {body}")

        if "gateway" in procs and "user" in procs:
            user_env = containers["user"].env
            where = "the SMTP sink" if smtp is not None else f"the development mailbox (MAIL_DIR {user_env.get('MAIL_DIR')})"
            section(f"mail: the registration's verification mail reaches {where}, its link under PUBLIC_URL")
            address = f"chart{tag}@example.com"
            if user_env.get("EMAIL_VERIFICATION", "true") == "false":
                print("  EMAIL_VERIFICATION=false: registration mails nothing")
            else:
                found: list[bytes] = []
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not found:
                    if smtp is not None:
                        found = [raw for _, rcpts, raw in list(smtp.messages) if any(address in r for r in rcpts)]
                    elif user_env.get("MAIL_DIR"):
                        found = [f.read_bytes() for f in sorted(Path(user_env["MAIL_DIR"]).glob("*.eml"))
                                 if address.encode() in f.read_bytes()]
                    if not found:
                        time.sleep(0.3)
                if report.check(bool(found), f"a mail to {address} reached {where}", "none within 20 s"):
                    msg, text = mail_text(found[0])
                    print(f"    From: {msg['From']}  Subject: {msg['Subject']}")
                    base = user_env.get("PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/")
                    links = re.findall(r"https?://[^\s\"'<>]+", text)
                    report.check(any(l.startswith(base + "/") and "token=" in l for l in links),
                                 f"the mail's link is under PUBLIC_URL ({base}/...?token=...)", f"links {links}")
                    if "MAIL_FROM" in user_env:
                        report.check(user_env["MAIL_FROM"].split("<")[-1].rstrip(">").strip() in str(msg["From"]),
                                     f"the mail is from MAIL_FROM ({user_env['MAIL_FROM']})", f"From: {msg['From']}")
                    if "BRANDING_PRODUCT_NAME" in user_env:
                        report.check(user_env["BRANDING_PRODUCT_NAME"] in f"{msg['Subject']}\n{text}",
                                     f"the mail names the product (BRANDING_PRODUCT_NAME={user_env['BRANDING_PRODUCT_NAME']})")

        if nats is not None:
            section("events on the NATS: streams SUITE_USER and SUITE_AUTH hold messages, the auth consumer exists")
            want = {"SUITE_USER": "suite.user.v1.>", "SUITE_AUTH": "suite.auth.v1.>"}
            deadline = time.monotonic() + 20
            streams: dict[str, dict] = {}
            while time.monotonic() < deadline:
                streams = nats.streams()
                if all((streams.get(n, {}).get("state") or {}).get("messages", 0) > 0 for n in want):
                    break
                time.sleep(0.5)
            env = containers["user"].env
            for name, subject in want.items():
                st = streams.get(name)
                if not report.check(st is not None, f"stream {name} exists", f"streams: {sorted(streams)}"):
                    continue
                cfg, state = st.get("config") or {}, st.get("state") or {}
                report.check(subject in (cfg.get("subjects") or []), f"stream {name} takes {subject}", f"{cfg.get('subjects')}")
                report.check(state.get("messages", 0) > 0, f"stream {name} holds messages after register and log in",
                             f"{state.get('messages', 0)} messages")
                print(f"    {name}: {state.get('messages', 0)} messages, subjects {cfg.get('subjects')}")
                if "EVENTS_MAX_AGE_SECS" in env:
                    report.check(cfg.get("max_age") == int(env["EVENTS_MAX_AGE_SECS"]) * 1_000_000_000,
                                 f"stream {name} max_age is EVENTS_MAX_AGE_SECS={env['EVENTS_MAX_AGE_SECS']}", f"{cfg.get('max_age')} ns")
                if "EVENTS_REPLICAS" in env:
                    report.check(cfg.get("num_replicas") == int(env["EVENTS_REPLICAS"]),
                                 f"stream {name} replicas is EVENTS_REPLICAS={env['EVENTS_REPLICAS']}", f"{cfg.get('num_replicas')}")
            # Each binary names its NATS connection after itself (suite-user, suite-auth, suite-gateway).
            names = nats.client_names()
            for c in COMPONENTS:
                binary = Path(containers[c].argv[0]).name
                if c in procs:
                    report.check(binary in names, f"{c}: {binary} is connected to the NATS (NATS_URL reached it)",
                                 f"clients: {names}")
            consumers = [c.get("name") for st in streams.values() for c in st.get("consumer_detail") or []]
            report.check("suite-auth-sessions" in consumers, "the auth service's durable consumer suite-auth-sessions exists",
                         f"consumers: {consumers}")

        if redis is not None and "gateway" in procs:
            section("shared state in Redis: the gateway's rate buckets and the user cache")
            prefix = redis_prefix
            user_prefix = containers["user"].env.get("REDIS_KEY_PREFIX", "suite:")
            user_id = me.get("id")
            # The buckets' keys live until the bucket is full again (milliseconds for the general one), so
            # they are watched; one more read a second later if the gateway had fallen back to its own buckets.
            rl = []
            for attempt in range(4):
                rl = sorted(k for k in redis.seen if k.startswith(f"{prefix}rl:"))
                if rl or not token:
                    break
                time.sleep(1.2)
                http_json(wiring.ports["gateway"]["http"], "GET", "/api/v1/users/me", token=token)
                time.sleep(0.2)
            report.check(bool(rl), f"the gateway wrote its rate buckets to Redis ({prefix}rl:*)",
                         f"keys seen: {sorted(redis.seen)}")
            for k in rl:
                print(f"    {k}")
            report.check(any(k.startswith(f"{prefix}rl:auth:") for k in rl) or not rl,
                         f"the sensitive bucket (register, login) is in Redis ({prefix}rl:auth:*)", f"{rl}")
            client = redis.client()
            try:
                want = f"{user_prefix}user:{user_id}" if user_id else None
                keys: list[str] = []
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    keys = client.scan(f"{user_prefix}user:*")
                    if (want in keys) if want else keys:
                        break
                    time.sleep(0.2)
                report.check((want in keys) if want else bool(keys),
                             f"the user service cached the user read with GET /api/v1/users/me ({want or user_prefix + 'user:*'})",
                             f"{user_prefix}user:* keys: {keys}")
                for k in keys:
                    print(f"    {k}")
                every = client.scan("*")
                report.check(all(k.startswith((prefix, user_prefix)) for k in every),
                             f"every key is under REDIS_KEY_PREFIX ({prefix})", f"{[k for k in every if not k.startswith(prefix)]}")
            finally:
                client.close()

        section("SIGTERM: each binary drains and exits 0 within terminationGracePeriodSeconds")
        for c in reversed(COMPONENTS):
            p = procs.get(c)
            if p is None:
                continue
            grace = rendered.deployment(c)["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
            if p.poll() is not None:
                report.fail(f"{c}: exited early with {p.returncode}")
                continue
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=grace)
                report.check(rc == 0, f"{c}: SIGTERM -> exit 0 within {grace}s", f"exit {rc}")
            except subprocess.TimeoutExpired:
                report.fail(f"{c}: still running {grace}s after SIGTERM")
    except (LookupError, KeyError, subprocess.CalledProcessError) as e:
        detail = e.stderr if isinstance(e, subprocess.CalledProcessError) else e
        report.fail(f"wiring: {detail}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if nats is not None:
            nats.stop()
        if redis is not None:
            redis.stop()
        if smtp is not None:
            smtp.stop()
        if report.failed:
            for c, log in logs.items():
                if log.exists():
                    print(f"\n--- {c} log (last lines)")
                    print("\n".join(log.read_text(errors="replace").splitlines()[-25:]))
        if not args.keep:
            for db in databases.values():
                try:
                    psql(args.postgres, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                except subprocess.CalledProcessError as e:
                    print(f"  (could not drop {db}: {e.stderr.strip()})")
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nkept {workdir} and databases {sorted(databases.values())}")

    print()
    for w in report.warnings:
        print(f"warning: {w}")
    for f in report.failed:
        print(f"failed: {f}")
    print(f"chart_vs_binaries: {report.passed} passed, {len(report.failed)} failed")
    return 0 if not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
