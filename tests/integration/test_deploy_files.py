"""deploy/: generated files are current, and the compose stack, Dockerfile and Kubernetes
manifests parse and agree on images, ports and paths (no Docker engine here: nothing is built).
The demo SQL is run against the real PostgreSQL and checked with deploy/checks.yaml."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from dqmon.cli import main

from conftest import PG_ADMIN, need_service

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DQMON_PORT = 9464


def load(path: Path) -> Any:
    """Parse one YAML file of deploy/."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    """Return deploy/compose.yaml's services."""
    services: dict[str, Any] = load(DEPLOY / "compose.yaml")["services"]
    return services


def k8s(kind: str) -> dict[str, Any]:
    """Return the one Kubernetes object of `kind` in deploy/k8s."""
    docs = [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))]
    found: list[dict[str, Any]] = [doc for doc in docs if doc.get("kind") == kind]
    assert len(found) == 1, kind
    return found[0]


def mounts(service: str) -> dict[str, Path]:
    """Return a compose service's bind mounts as {container path: host path}."""
    binds = {}
    for volume in compose()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            binds[target] = (DEPLOY / source).resolve()
    return binds


def host_path(service: str, container_path: str) -> Path:
    """Map a path inside a compose service to the file in the repo it is mounted from."""
    for target, source in sorted(mounts(service).items(), key=lambda m: -len(m[0])):
        inside = PurePosixPath(container_path)
        if inside == PurePosixPath(target) or PurePosixPath(target) in inside.parents:
            return source / inside.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into {service}")


def port_of(address: str) -> int:
    """Return the port of `host:port` or of a URL."""
    return int(urlsplit(address if "//" in address else f"//{address}").port or 0)


# --- generated files -----------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "path"), [
    ("rules", DEPLOY / "rules" / "dqmon-rules.yml"),
    ("dashboard", DEPLOY / "grafana" / "dashboards" / "dqmon.json"),
])
def test_generated_file_is_exactly_what_the_command_writes(
        command: str, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/'s rule file and dashboard are what `dqmon rules|dashboard` write for its checks."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--config", str(DEPLOY / "checks.yaml")])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == path.read_text(encoding="utf-8")


def test_kubernetes_copies_match_the_generated_files() -> None:
    """The PrometheusRule holds the rule file's groups; the ConfigMap holds checks.yaml as is."""
    rules = load(DEPLOY / "rules" / "dqmon-rules.yml")
    assert k8s("PrometheusRule")["spec"] == rules
    checks = (DEPLOY / "checks.yaml").read_text(encoding="utf-8")
    assert k8s("ConfigMap")["data"] == {"checks.yaml": checks}
    result = subprocess.run([sys.executable, str(DEPLOY / "generate.py"), "--check"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr


def test_dashboard_json_is_a_grafana_model_over_the_spec_metrics() -> None:
    """The committed dashboard is valid JSON, uid dqmon, with the dq_table variable."""
    model = json.loads((DEPLOY / "grafana" / "dashboards" / "dqmon.json").read_text())
    assert model["uid"] == "dqmon"
    assert "dq_table" in [v["name"] for v in model["templating"]["list"]]
    exprs = [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    assert exprs and all(re.search(r"\bdq_[a-z_]+\{", e) for e in exprs)


# --- compose -------------------------------------------------------------------------------------

def test_compose_images_are_pinned_and_dqmon_is_built_here() -> None:
    """Every image has a fixed tag; dqmon's is built by deploy/Dockerfile from the repo root."""
    services = compose()
    assert set(services) == {"postgres", "dqmon", "dqmon-once", "otel-collector", "prometheus",
                             "alertmanager", "grafana"}
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", image), name
        assert not image.endswith(":latest"), name
    build = services["dqmon"]["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).is_file()
    assert services["dqmon-once"]["image"] == services["dqmon"]["image"]


def test_compose_bind_mounts_exist() -> None:
    """Every ./path a service mounts exists in deploy/."""
    for name in compose():
        for target, source in mounts(name).items():
            assert source.exists(), f"{name}: {source} (for {target})"


def test_compose_wires_dqmon_to_the_collector_to_prometheus() -> None:
    """OTLP goes to the collector's gRPC port; Prometheus scrapes the collector's exporter port."""
    services = compose()
    collector = load(DEPLOY / "otel-collector.yaml")
    grpc = collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    endpoint = urlsplit(services["dqmon"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.hostname, endpoint.port) == ("otel-collector", port_of(grpc))
    exporter = collector["exporters"]["prometheus"]
    assert not exporter.get("namespace")  # no prefix: names stay dq_*
    assert collector["service"]["pipelines"]["metrics"]["exporters"] == ["prometheus"]
    prometheus = load(DEPLOY / "prometheus.yml")
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}
    assert f"otel-collector:{port_of(exporter['endpoint'])}" in targets
    published = {p.split(":")[-1] for p in services["otel-collector"]["ports"]}
    assert {str(port_of(grpc)), str(port_of(exporter["endpoint"]))} <= published


def test_prometheus_loads_the_generated_rules_and_alerts_alertmanager() -> None:
    """Inside the container, rule_files resolve to deploy/rules/dqmon-rules.yml."""
    services = compose()
    config_path = next(a.split("=", 1)[1] for a in services["prometheus"]["command"]
                       if a.startswith("--config.file="))
    assert host_path("prometheus", config_path) == DEPLOY / "prometheus.yml"
    prometheus = load(DEPLOY / "prometheus.yml")
    rule_file = PurePosixPath(config_path).parent / prometheus["rule_files"][0]
    assert host_path("prometheus", str(rule_file)) == DEPLOY / "rules" / "dqmon-rules.yml"
    target = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert target.split(":")[0] == "alertmanager"
    assert f"{port_of(target)}:{port_of(target)}" in services["alertmanager"]["ports"][0]


def test_alertmanager_routes_to_declared_receivers() -> None:
    """alertmanager.yml groups by table and every route names a declared receiver."""
    config = load(DEPLOY / "alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(r["receiver"] in receivers for r in routes)
    assert config["route"]["group_by"] == ["alertname", "dq_table"]
    compose_file = compose()["alertmanager"]["command"][0].split("=", 1)[1]
    assert host_path("alertmanager", compose_file) == DEPLOY / "alertmanager.yml"


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    """The datasource points at the prometheus service; the provider path holds dqmon.json."""
    services = compose()
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    datasources = load(provisioning / "datasources" / "dqmon.yaml")["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    url = urlsplit(prometheus["url"])
    assert url.hostname == "prometheus"
    assert f"{url.port}:{url.port}" in services["prometheus"]["ports"][0]
    provider = load(provisioning / "dashboards" / "dqmon.yaml")["providers"][0]
    folder = host_path("grafana", provider["options"]["path"])
    assert (folder / "dqmon.json").is_file()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home).is_file()
    init = host_path("postgres", "/docker-entrypoint-initdb.d/10-demo.sql")
    assert init == DEPLOY / "postgres" / "demo.sql"


def test_dqmon_service_reads_the_mounted_checks_on_its_port() -> None:
    """dqmon's --config is the mounted deploy/checks.yaml and --listen is the published port."""
    dqmon = compose()["dqmon"]
    args = dqmon["command"]
    assert host_path("dqmon", args[args.index("--config") + 1]) == DEPLOY / "checks.yaml"
    assert port_of(args[args.index("--listen") + 1]) == DQMON_PORT
    assert dqmon["ports"] == [f"127.0.0.1:{DQMON_PORT}:{DQMON_PORT}"]
    assert dqmon["environment"]["DQMON_WAREHOUSE_URL"].startswith("postgresql+psycopg://")


# --- Dockerfile ----------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(w.upper(), rest.strip()) for line in lines if line and not line.startswith("#")
            for w, _, rest in [line.partition(" ")]]


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    """Slim base images, a numeric non-root USER, EXPOSE and HEALTHCHECK on dqmon's port."""
    steps = dockerfile()
    bases = [args.split()[0] for kw, args in steps if kw == "FROM"]
    assert bases and all(b.endswith("-slim") for b in bases)
    user = [args for kw, args in steps if kw == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    assert [args for kw, args in steps if kw == "EXPOSE"] == [str(DQMON_PORT)]
    health = next(args for kw, args in steps if kw == "HEALTHCHECK")
    assert f"http://127.0.0.1:{DQMON_PORT}/healthz" in health
    assert json.loads(next(args for kw, args in steps if kw == "ENTRYPOINT")) == ["dqmon"]


def test_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    """Every COPY source (context = repo root) exists and is re-included by the .dockerignore."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    included = {line[1:] for line in ignore if line.startswith("!")}
    copies = [args.split()[:-1] for kw, args in dockerfile()
              if kw == "COPY" and not args.startswith("--from")]
    sources = [s.rstrip("/") for sources in copies for s in sources]
    assert sources == ["pyproject.toml", "README.md", "dqmon", "deploy/checks.yaml"]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source in included, source


# --- Kubernetes ----------------------------------------------------------------------------------

def test_kustomization_lists_every_manifest_and_they_parse() -> None:
    """kustomization.yaml names exactly the manifests in deploy/k8s, each valid YAML with a kind."""
    resources = load(K8S / "kustomization.yaml")["resources"]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(resources) == sorted(files)
    kinds = {load(K8S / name)["kind"] for name in resources}
    assert kinds == {"Namespace", "Secret", "ConfigMap", "Deployment", "Service",
                     "ServiceMonitor", "PrometheusRule"}


def test_deployment_probes_resources_and_references() -> None:
    """Probes hit /healthz and /readyz on the metrics port; Secret and ConfigMap names resolve."""
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == compose()["dqmon"]["image"]
    assert container["ports"] == [{"name": "metrics", "containerPort": DQMON_PORT}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    secret = next(e for e in container["env"] if e["name"] == "DQMON_WAREHOUSE_URL")
    ref = secret["valueFrom"]["secretKeyRef"]
    assert ref["name"] == k8s("Secret")["metadata"]["name"]
    assert ref["key"] in k8s("Secret")["stringData"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == k8s("ConfigMap")["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    args = container["args"]
    config_path = PurePosixPath(args[args.index("--config") + 1])
    assert config_path.parent == PurePosixPath(mount["mountPath"])
    assert config_path.name in k8s("ConfigMap")["data"]
    assert port_of(args[args.index("--listen") + 1]) == DQMON_PORT


def test_service_and_servicemonitor_reach_the_metrics_port() -> None:
    """The Service selects the pods and exposes port `metrics`, which the ServiceMonitor scrapes."""
    labels = k8s("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = k8s("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"] == [{"name": "metrics", "port": DQMON_PORT, "targetPort": "metrics"}]
    monitor = k8s("ServiceMonitor")["spec"]
    service_labels = k8s("Service")["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["endpoints"][0]["port"] == "metrics"
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert all(load(K8S / n).get("metadata", {}).get("namespace", "dqmon") == "dqmon"
               for n in load(K8S / "kustomization.yaml")["resources"])


# --- demo data -----------------------------------------------------------------------------------

@pytest.fixture
def demo_database(pg_database: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Load deploy/postgres/demo.sql into a fresh database with its own reader role."""
    psql = shutil.which("psql")
    if psql is None:
        need_service("psql", "the PostgreSQL client is not installed")
    # demo.sql makes tables (with foreign keys) that must not meet other tests' tables.
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    name = f"dqmon_demo_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    host, port = pg_database["host"], pg_database["port"]
    user = pg_database["admin_user"]  # demo.sql creates tables and a role
    try:
        subprocess.run([str(psql), "-X", "-q", "-h", host, "-p", port, "-U", user, "-d", name,
                        "-v", f"dqmon_role={name}", "-f", str(DEPLOY / "postgres" / "demo.sql")],
                       env={**os.environ, "DQMON_DB_PASSWORD": "demo-secret"}, check=True,
                       capture_output=True, timeout=120)
        yield name, f"postgresql+psycopg://{name}:demo-secret@{host}:{port}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.close()


@pytest.mark.postgres
def test_demo_data_fails_exactly_the_stale_payments_table(
        demo_database: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Demo data read by the demo's reader role: only payments.freshness fails."""
    _, url = demo_database
    monkeypatch.setenv("DQMON_WAREHOUSE_URL", url)
    with pytest.raises(SystemExit) as exit_:
        main(["run-once", "--config", str(DEPLOY / "checks.yaml"), "--format", "json",
              "--no-export"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert exit_.value.code == 1
    assert [(r["table"], r["check"]) for r in results if r["status"] != "pass"] == [
        ("payments", "freshness")]
    assert len(results) == 19
    assert {(r["table"], r["check"]): r["value"] for r in results
            if r["check"] in ("row_count", "late_shipments", "email_format")} == {
        ("orders", "row_count"): 5000, ("orders", "email_format"): 0.995,
        ("orders", "late_shipments"): 5, ("customers", "row_count"): 500,
        ("payments", "row_count"): 1000}
