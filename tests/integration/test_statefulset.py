"""deploy/k8s/sharded: N replicas of dqmon as a StatefulSet, ordinal = shard index, scraped
by one Prometheus with the rules unchanged (SPEC sections 6 and 11, issue 9).

There is no Kubernetes here, so each layer is checked as far as it runs on this machine:
- the kustomize component is rendered by a small model of the few kustomize features it
  uses (no kustomize that knows components installs from Debian); the rendered objects
  must wire together (Service, ServiceMonitor, probes, config mount);
- each pod's environment is resolved from the manifest the way the kubelet does it
  (downward API label, `$(VAR)` expansion), and N real `dqmon run` processes get exactly
  that environment against a SQLite demo warehouse: their tables are disjoint and complete;
- one real Prometheus scrapes all N with the generated rules: one series per check, and
  every alert once, even while a resize makes two pods report the same table.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dqmon.daemon import Shard

from conftest import need_service
from processes import free_port, poll, stop

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SHARDED = K8S / "sharded"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"  # set on StatefulSet pods by Kubernetes >= 1.28
SHARD_ENV = ("POD_INDEX", "DQMON_SHARDS", "DQMON_SHARD")  # what the StatefulSet adds
PROMETHEUS = Path("/usr/bin/prometheus")
DQMON_PORT = 9464
Key = tuple[str, str]
Objects = dict[Key, dict[str, Any]]


# --- a model of the kustomize features the component uses -------------------------------------

def load_all(path: Path) -> list[dict[str, Any]]:
    """Parse every document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def key(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge of a patch without lists: maps merge, scalars replace."""
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            merge(target[name], value)
        else:
            target[name] = copy.deepcopy(value)


def locate(obj: Any, field_path: str) -> tuple[Any, Any]:
    """Return (container, key) of a kustomize field path such as `a.b.[name=x].c`."""
    parts = field_path.split(".")
    for part in parts[:-1]:
        if match := re.fullmatch(r"\[(\w+)=(.+)\]", part):
            obj = next(item for item in obj if item.get(match[1]) == match[2])
        else:
            obj = obj[part]
    return obj, parts[-1]


def render(replicas: int | None = None) -> Objects:
    """Render deploy/k8s with the sharded component, as kustomize does; `replicas` edits N."""
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    component = yaml.safe_load((SHARDED / "kustomization.yaml").read_text(encoding="utf-8"))
    assert component["kind"] == "Component"
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    objects: Objects = {}
    for path in [K8S / name for name in base["resources"]] + [
            SHARDED / name for name in component["resources"]]:
        for obj in load_all(path):
            assert key(obj) not in objects, key(obj)
            objects[key(obj)] = obj
    if replicas is not None:
        objects["StatefulSet", "dqmon"]["spec"]["replicas"] = replicas
    for entry in component["patches"]:
        [patch] = load_all(SHARDED / entry["path"])
        assert key(patch) in objects, f"{entry['path']} patches nothing"
        if patch.pop("$patch", None) == "delete":
            del objects[key(patch)]
        else:
            merge(objects[key(patch)], patch)
    for replacement in component["replacements"]:
        source = replacement["source"]
        container, name = locate(objects[source["kind"], source["name"]], source["fieldPath"])
        value = container[name]
        for target in replacement["targets"]:
            obj = objects[target["select"]["kind"], target["select"]["name"]]
            for path in target["fieldPaths"]:
                into, name = locate(obj, path)
                # kustomize keeps the target's type: an env value stays a string.
                into[name] = str(value) if isinstance(into[name], str) else value
    return objects


def base_objects() -> Objects:
    """The default deploy/k8s, without the component."""
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return {key(obj): obj for name in base["resources"] for obj in load_all(K8S / name)}


# --- a model of the kubelet: a StatefulSet pod's environment ----------------------------------

def expand(text: str, env: dict[str, str]) -> str:
    """Expand `$(VAR)` from the variables defined so far; `$$` is a `$`; unknown stays as is."""
    def one(match: re.Match[str]) -> str:
        if match[1] == "$":
            return "$"
        return env.get(match[2], match[0])
    return re.sub(r"\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))", one, text)


def pod_env(statefulset: dict[str, Any], ordinal: int | None, secrets: dict[Key, str],
            ) -> dict[str, str]:
    """The environment of pod `<name>-<ordinal>` (ordinal None: a cluster without the label)."""
    name = f"{statefulset['metadata']['name']}-{ordinal}"
    labels = dict(statefulset["spec"]["template"]["metadata"]["labels"])
    labels["statefulset.kubernetes.io/pod-name"] = name
    if ordinal is not None:
        labels[POD_INDEX_LABEL] = str(ordinal)
    fields = {"metadata.name": name, "metadata.namespace": statefulset["metadata"]["namespace"]}
    fields.update({f"metadata.labels['{k}']": v for k, v in labels.items()})
    env: dict[str, str] = {}
    for var in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
        elif "fieldRef" in var["valueFrom"]:
            path = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in fields or path.startswith("metadata.labels["), path
            env[var["name"]] = fields.get(path, "")  # a missing label reads as ""
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"], ref["key"]]
    return env


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    [container] = obj["spec"]["template"]["spec"]["containers"]
    return container


def env_var(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in container_of(obj)["env"] if v["name"] == name)


def arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# --- the manifests -----------------------------------------------------------------------------

def test_component_replaces_the_deployment_with_a_statefulset_behind_a_headless_service() -> None:
    """The default's objects, less the Deployment, plus a StatefulSet; the ServiceMonitor
    selects the (now headless) Service, which selects every pod, on the metrics port."""
    objects = render()
    assert set(objects) == (set(base_objects()) - {("Deployment", "dqmon")}) | {
        ("StatefulSet", "dqmon")}
    statefulset = objects["StatefulSet", "dqmon"]
    spec = statefulset["spec"]
    service = objects["Service", "dqmon"]
    monitor = objects["ServiceMonitor", "dqmon"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name and target per pod
    assert spec["serviceName"] == service["metadata"]["name"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    [port] = service["spec"]["ports"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    assert container_of(statefulset)["ports"] == [
        {"name": port["targetPort"], "containerPort": DQMON_PORT}]
    assert port["port"] == DQMON_PORT
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert "volumeClaimTemplates" not in spec  # dqmon keeps no state
    assert all(obj["metadata"].get("namespace", "dqmon") == "dqmon" for obj in objects.values())
    # The rules and the checks are the default's, untouched: "rules unchanged".
    for kept in (("PrometheusRule", "dqmon"), ("ConfigMap", "dqmon-checks"),
                 ("ServiceMonitor", "dqmon")):
        assert objects[kept] == base_objects()[kept]


def test_the_component_lists_every_file_in_its_folder() -> None:
    """Every YAML file of deploy/k8s/sharded is the component, a resource or a patch of it."""
    component = yaml.safe_load((SHARDED / "kustomization.yaml").read_text(encoding="utf-8"))
    used = {"kustomization.yaml", *component["resources"],
            *(p["path"] for p in component["patches"])}
    assert {p.name for p in SHARDED.glob("*.y*ml")} == used


def test_pod_template_is_the_deployments_plus_the_shard_variables() -> None:
    """Image, args, probes, resources, security and the ConfigMap mount are the Deployment's."""
    statefulset = render()["StatefulSet", "dqmon"]
    deployment = base_objects()["Deployment", "dqmon"]
    template = copy.deepcopy(statefulset["spec"]["template"])
    container = template["spec"]["containers"][0]
    assert [v["name"] for v in container["env"]][-3:] == list(SHARD_ENV)
    container["env"] = [v for v in container["env"] if v["name"] not in SHARD_ENV]
    assert template == deployment["spec"]["template"]
    assert statefulset["spec"]["selector"] == deployment["spec"]["selector"]
    # And what that means, said outright:
    container = container_of(statefulset)
    pod = statefulset["spec"]["template"]["spec"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    configmap = base_objects()["ConfigMap", "dqmon-checks"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    config = Path(arg_after(container["args"], "--config"))
    assert str(config.parent) == mount["mountPath"] and config.name in configmap["data"]
    assert int(arg_after(container["args"], "--listen").rsplit(":", 1)[1]) == DQMON_PORT


def test_n_is_set_once_and_each_ordinal_runs_its_own_shard() -> None:
    """spec.replicas is N; DQMON_SHARDS is copied from it; pod I gets DQMON_SHARD=I/N."""
    [raw] = load_all(SHARDED / "statefulset.yaml")
    replicas = raw["spec"]["replicas"]
    assert isinstance(replicas, int) and replicas >= 2
    assert not env_var(raw, "DQMON_SHARDS")["value"].isdigit()  # only kustomize sets N
    assert env_var(raw, "POD_INDEX")["valueFrom"] == {
        "fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}}
    secrets = {("dqmon-warehouse", "DQMON_WAREHOUSE_URL"): "sqlite://"}
    for n in (replicas, 5):  # editing spec.replicas alone changes N everywhere
        statefulset = render(replicas=None if n == replicas else n)["StatefulSet", "dqmon"]
        assert statefulset["spec"]["replicas"] == n
        assert env_var(statefulset, "DQMON_SHARDS")["value"] == str(n)
        shards = [Shard.parse(pod_env(statefulset, i, secrets)["DQMON_SHARD"]) for i in range(n)]
        assert shards == [Shard(i, n) for i in range(n)]


@pytest.mark.slow
def test_a_pod_that_cannot_know_its_shard_does_not_start(tmp_path: Path) -> None:
    """A wrong split never runs silently: each such pod's DQMON_SHARD is refused, and a real
    `dqmon run` given one exits 2 (CrashLoopBackOff) instead of checking a wrong set."""
    [raw] = load_all(SHARDED / "statefulset.yaml")
    rendered = render()["StatefulSet", "dqmon"]
    n = rendered["spec"]["replicas"]
    secrets = {("dqmon-warehouse", "DQMON_WAREHOUSE_URL"): "sqlite://"}
    cases = {  # what goes wrong: the pod's environment
        "no pod-index label (Kubernetes < 1.28)": pod_env(rendered, None, secrets),
        "kubectl scale past N": pod_env(rendered, n, secrets),
        "applied without kustomize": pod_env(raw, 0, secrets),
    }
    for case, env in cases.items():
        with pytest.raises(ValueError):
            Shard.parse(env["DQMON_SHARD"])
            pytest.fail(case)
    env = cases["no pod-index label (Kubernetes < 1.28)"]
    assert env["DQMON_SHARD"] == f"/{n}"
    config = tmp_path / "checks.yaml"
    config.write_text(checks_yaml(["orders_00"]), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "dqmon", "run", "--config", str(config),
                             "--listen", f"127.0.0.1:{free_port()}", "--no-export"],
                            env={**clean_environ(), **env}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert f"DQMON_SHARD: '/{n}'" in result.stderr


# --- N real daemons ----------------------------------------------------------------------------

ORDERS = [f"orders_{i:02d}" for i in range(12)]  # fresh: pass
CUSTOMERS = [f"customers_{i:02d}" for i in range(12)]  # the demo's stale table: DQFreshness
TABLES = ORDERS + CUSTOMERS
CHECKS_PER_TABLE = 2


def checks_yaml(names: list[str]) -> str:
    """Many logical tables over the demo's two physical ones, every 2 seconds."""
    tables = []
    for name in names:
        if name.startswith("customers"):
            checks = [{"freshness": {"column": "signed_up", "max_age": "7d"}},
                      {"row_count": {"min": 100}}]
        else:
            checks = [{"freshness": {"column": "created_at", "max_age": "2h"}},
                      {"row_count": {"min": 1000}}]
        tables.append({"name": name, "table": name.split("_")[0], "schedule": "every 2s",
                       "checks": checks})
    return yaml.safe_dump({"version": 1, "warehouses": {"demo": {"url": "${DQMON_WAREHOUSE_URL}"}},
                           "tables": tables})


def clean_environ() -> dict[str, str]:
    """This process's environment without anything that would steer dqmon."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DQMON_", "OTEL_"))}


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass
class Cluster:
    """Pods of the StatefulSet, played by `dqmon run` processes on loopback ports."""

    tmp: Path
    checks: Path
    secrets: dict[Key, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)  # pod name -> port
    replicas: list[str] = field(default_factory=list)  # the StatefulSet's pods, as applied
    logs: list[Path] = field(default_factory=list)

    def start_pod(self, statefulset: dict[str, Any], ordinal: int, port: int) -> str:
        """Start pod `<name>-<ordinal>` with the manifest's args and the kubelet's env."""
        name = f"{statefulset['metadata']['name']}-{ordinal}"
        args = list(container_of(statefulset)["args"])
        args[args.index("--config") + 1] = str(self.checks)
        args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
        env = {**clean_environ(), **pod_env(statefulset, ordinal, self.secrets),
               "DQMON_INSTANCE": name}  # the host name in a pod; not this machine's
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "dqmon", *args], env=env,
                                               stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))
        self.ports[name], self.logs = port, [*self.logs, log]
        return name

    def reported(self, pod: str) -> dict[str, set[str]]:
        """Scrape a pod's /metrics: {table: {check}} from dq_check_up."""
        body = http_get(f"http://127.0.0.1:{self.ports[pod]}/metrics") or ""
        found: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "dq_check_up":
                    found.setdefault(sample.labels["dq_table"], set()).add(
                        sample.labels["dq_check"])
        return found

    def stop(self) -> None:
        stop(self.procs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The demo warehouse, the checks of 24 tables, and one process per StatefulSet replica."""
    tmp = tmp_path_factory.mktemp("sharded")
    warehouse = tmp / "warehouse.db"
    subprocess.run([sys.executable, "-m", "dqmon", "demo", "--path", str(warehouse)],
                   env=clean_environ(), check=True, capture_output=True, timeout=60)
    checks = tmp / "checks.yaml"
    checks.write_text(checks_yaml(TABLES), encoding="utf-8")
    cluster = Cluster(tmp, checks, {("dqmon-warehouse", "DQMON_WAREHOUSE_URL"):
                                    f"sqlite:///{warehouse}"})
    statefulset = render()["StatefulSet", "dqmon"]
    try:
        for ordinal in range(statefulset["spec"]["replicas"]):
            cluster.replicas.append(cluster.start_pod(statefulset, ordinal, free_port()))
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
def test_replicas_check_disjoint_sets_of_tables_that_together_are_all(cluster: Cluster) -> None:
    """Each pod's /metrics reports whole tables of its own; together, every table once."""
    pods = cluster.replicas

    def everything_reported() -> dict[str, dict[str, set[str]]] | None:
        seen = {pod: cluster.reported(pod) for pod in pods}
        tables = [checks for found in seen.values() for checks in found.values()]
        return seen if len(tables) >= len(TABLES) and all(
            len(checks) == CHECKS_PER_TABLE for checks in tables) else None

    seen = poll("every table on some pod", everything_reported, 60, cluster.logs)
    time.sleep(2.5)  # one more schedule period: a table a pod should not run would show by now
    assert {pod: cluster.reported(pod) for pod in pods} == seen
    tables = [t for found in seen.values() for t in found]
    assert sorted(tables) == sorted(TABLES)  # complete, and no table on two pods
    assert all(seen.values())  # every shard has work: the hash spreads these names
    n = len(seen)
    for ordinal, found in enumerate(seen.values()):
        assert set(found) == {t for t in TABLES if Shard(ordinal, n).owns(t)}


# --- one Prometheus scraping them all ----------------------------------------------------------

class Prometheus:
    def __init__(self, url: str, logs: list[Path]) -> None:
        self.url, self.logs = url, logs

    def query(self, promql: str) -> list[dict[str, Any]] | None:
        """Instant query; None while Prometheus is not up."""
        body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        if body is None:
            return None
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def rules(self) -> list[dict[str, Any]]:
        body = http_get(f"{self.url}/api/v1/rules")
        return [r for g in json.loads(body or '{"data": {"groups": []}}')["data"]["groups"]
                for r in g["rules"]]

    def alerts(self) -> Counter[tuple[str, str, str]]:
        """ALERTS (pending or firing) counted by (alertname, dq_table, dq_check)."""
        return Counter((s["metric"]["alertname"], s["metric"]["dq_table"],
                        s["metric"].get("dq_check", "")) for s in self.query("ALERTS") or [])

    def evaluated_after(self, moment: float) -> bool:
        """Every rule group has been evaluated since `moment` (unix time)."""
        body = http_get(f"{self.url}/api/v1/rules")
        groups = json.loads(body or '{"data": {"groups": []}}')["data"]["groups"]
        stamps = [g["lastEvaluation"] for g in groups]
        return bool(groups) and all(
            not s.startswith("0001") and parse_time(s) > moment for s in stamps)


def parse_time(stamp: str) -> float:
    """Parse Prometheus's RFC 3339 time with nanoseconds."""
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


@pytest.mark.slow
@pytest.mark.prometheus
def test_one_prometheus_sees_each_check_once_and_each_alert_once(cluster: Cluster) -> None:
    """Scraping every pod with `dqmon rules` loaded as generated: one dq_check_up series per
    check, each expected alert once; then, while a resize to N+1 makes a new pod report
    tables an old one still reports, the series double but the alerts do not."""
    if not PROMETHEUS.exists():
        need_service("prometheus", f"{PROMETHEUS} is missing (Debian package `prometheus`)")
    tmp = cluster.tmp
    rules = tmp / "rules.yml"
    subprocess.run([sys.executable, "-m", "dqmon", "rules", "--config", str(cluster.checks),
                    "-o", str(rules)], env={**clean_environ(), "DQMON_WAREHOUSE_URL": "sqlite://"},
                   check=True, timeout=60)
    statefulset = render()["StatefulSet", "dqmon"]
    n = statefulset["spec"]["replicas"]
    resized = render(replicas=n + 1)["StatefulSet", "dqmon"]
    new_pod, new_port = f"dqmon-{n}", free_port()  # the first pod a scale-up to N+1 starts
    targets = {**cluster.ports, new_pod: new_port}
    prom_port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        # What the ServiceMonitor makes of the headless Service: one target per pod.
        "scrape_configs": [{"job_name": "serviceMonitor/dqmon/dqmon/0", "static_configs": [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"pod": pod, "namespace": "dqmon"}}
            for pod, port in targets.items()]}],
    }), encoding="utf-8")
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        cluster.procs.append(subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    prometheus = Prometheus(f"http://127.0.0.1:{prom_port}", [*cluster.logs, log])
    logs = prometheus.logs
    all_checks = len(TABLES) * CHECKS_PER_TABLE
    expected = Counter({("DQFreshness", t, "freshness"): 1 for t in CUSTOMERS})

    def every_check_scraped() -> bool:
        result = prometheus.query("count(count by (dq_table, dq_check) (dq_check_up))")
        return bool(result) and int(float(result[0]["value"][1])) == all_checks

    poll("every check of every shard in Prometheus", every_check_scraped, 60, logs)
    assert prometheus.query("count by (dq_table, dq_check) (dq_check_up) > 1") == []
    assert prometheus.query("count by (dq_table) (count by (dq_table, pod) (dq_check_up)) > 1") \
        == []
    poll("exactly the stale tables' DQFreshness alerts", lambda: prometheus.alerts() == expected,
         60, logs)
    assert all(r["health"] == "ok" for r in prometheus.rules())
    [sample, *_] = prometheus.query("ALERTS") or [{}]
    assert not {"pod", "instance", "job"} & set(sample["metric"])  # aggregated away

    # A resize is under way: pod N of N+1 starts while the old pods still run i/N.
    cluster.start_pod(resized, n, new_port)
    moved = {t for t in TABLES if Shard(n, n + 1).owns(t)}
    assert moved & set(CUSTOMERS) and moved & set(ORDERS)  # both kinds of table overlap

    def doubled() -> set[str] | None:
        result = prometheus.query("count by (dq_table, dq_check) (dq_check_up) > 1") or []
        tables = {s["metric"]["dq_table"] for s in result}
        return tables if tables == moved and len(result) == len(moved) * CHECKS_PER_TABLE \
            else None

    poll(f"{new_pod}'s series next to the old owners'", doubled, 60, logs)
    since = time.time()
    poll("a rule evaluation over the doubled series",
         lambda: prometheus.evaluated_after(since + 1), 60, logs)
    assert prometheus.alerts() == expected
    assert prometheus.query("count by (alertname, dq_table, dq_check) (ALERTS) > 1") == []
    assert all(r["health"] == "ok" for r in prometheus.rules())
