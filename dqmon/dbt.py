"""Read a dbt run's run_results.json (and manifest.json): each data test becomes a CheckResult.

dbt's tests then travel dqmon's own road (SPEC 13, issue 13): the failure count is the
`dq.custom_value` of a `custom` check whose `dq.table` is the model or source the test is
attached to, and every executed node becomes a span. Pure: the files are read here, nothing
else is touched; docs/dbt.md has the mapping table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dqmon.config.kinds import Custom
from dqmon.config.resolved import CheckSpec, Threshold
from dqmon.config.types import Severity
from dqmon.errors import UsageError
from dqmon.results import CheckResult, Status

WAREHOUSE = "dbt"  # the default dq.warehouse of an imported test
# dbt's status of a test -> dqmon's; a skipped test did not run, as an errored one (up = 0).
STATUS: dict[str, Status] = {"pass": "pass", "fail": "fail", "warn": "fail", "error": "error",
                             "skipped": "error"}
SEVERITY: dict[str, Severity] = {"error": "critical", "warn": "warning"}
DEFAULT_IF = "!= 0"  # dbt's default warn_if and error_if
_BOUND = re.compile(r"^\s*(!=|>=|>)\s*(\d+)\s*$")
Json = Mapping[str, Any]


@dataclass(frozen=True)
class Node:
    """One executed dbt node of run_results.json."""

    unique_id: str
    status: str
    failures: float | None
    message: str | None
    execution_time_s: float
    started_at_s: float  # the execute phase's start, else when dbt wrote the file
    completed_at_s: float | None

    @property
    def resource_type(self) -> str:
        """Return the node's kind: test, model, seed, snapshot, operation, unit_test, ..."""
        return self.unique_id.split(".")[0]

    @property
    def name(self) -> str:
        """Return the node's name (a generic test's unique_id ends in a hash: left out)."""
        parts = self.unique_id.split(".")
        return parts[2] if self.resource_type == "test" else ".".join(parts[2:])

    @property
    def project(self) -> str:
        """Return the dbt project (package) the node belongs to."""
        return self.unique_id.split(".")[1]


@dataclass(frozen=True)
class Test:
    """What the manifest says of one data test."""

    table: str
    name: str
    column: str | None
    severity: Severity
    threshold: Threshold


@dataclass(frozen=True)
class NodeSpan:
    """The span of one dbt node: name, attributes, its own start and end, and any error."""

    name: str
    attributes: dict[str, str | int | float]
    start_s: float
    end_s: float  # a node that did not run (skipped) ends where it starts
    error: str | None


@dataclass(frozen=True)
class Imported:
    """A dbt run as dqmon publishes it: one result per data test, one span per node."""

    results: list[CheckResult]
    spans: list[NodeSpan]
    notes: list[str]  # what the reader should know (stderr), e.g. that a manifest was missing


# --- reading the files ---------------------------------------------------------------------

def read_json(path: str, kind: str) -> Json:
    """Read one of dbt's artifacts (`kind`: run-results or manifest); UsageError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not a dbt {kind} file (expected a JSON object)")
    _check_kind(doc, path, kind)
    return doc


def _check_kind(doc: Json, path: str, kind: str) -> None:
    """Refuse another artifact (a manifest given as run results, sources.json, ...)."""
    version = _object(doc.get("metadata")).get("dbt_schema_version")
    if isinstance(version, str) and f"/{kind}/" not in version:
        raise UsageError(f"{path}: not a dbt {kind} file (its dbt_schema_version is {version})")


# --- run_results.json ----------------------------------------------------------------------

def parse_run_results(doc: Json, path: str, now_s: float) -> list[Node]:
    """Return the nodes of a run_results.json document; UsageError naming the bad field."""
    results = doc.get("results")
    if not isinstance(results, list):
        raise UsageError(f"{path}: results: expected a list of node results")
    generated = _timestamp(_object(doc.get("metadata")).get("generated_at"))
    return [_node(item, f"{path}: results[{i}]", generated or now_s)
            for i, item in enumerate(results)]


def _node(item: Any, where: str, default_start_s: float) -> Node:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: expected an object")
    unique_id = _field(item, "unique_id", str, where)
    if unique_id.count(".") < 2:
        raise UsageError(f"{where}.unique_id: {unique_id!r} is not a dbt unique_id")
    started, completed = _execute_times(item.get("timing"))
    failures = _optional(item, "failures", (int, float), where)
    return Node(unique_id, _field(item, "status", str, where).lower(),
                None if failures is None else float(failures),
                _optional(item, "message", str, where),
                float(_optional(item, "execution_time", (int, float), where) or 0.0),
                started or default_start_s, completed)


def _field(item: Json, key: str, kind: type[Any] | tuple[type[Any], ...], where: str) -> Any:
    value = _optional(item, key, kind, where)
    if value is None:
        raise UsageError(f"{where}.{key}: missing")
    return value


def _optional(item: Json, key: str, kind: type[Any] | tuple[type[Any], ...], where: str) -> Any:
    value = item.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise UsageError(f"{where}.{key}: unexpected value {value!r}")
    return value


def _execute_times(timing: Any) -> tuple[float | None, float | None]:
    """Return the start and end of the node's execute phase (absent for a skipped node)."""
    for phase in timing if isinstance(timing, list) else ():
        if isinstance(phase, dict) and phase.get("name") == "execute":
            return _timestamp(phase.get("started_at")), _timestamp(phase.get("completed_at"))
    return None, None


def _object(value: Any) -> Json:
    """Return `value` if it is a JSON object, else an empty one (optional parts of dbt's files)."""
    return value if isinstance(value, dict) else {}


def _timestamp(text: Any) -> float | None:
    """Return an ISO 8601 time of dbt's (`2026-12-07T21:16:39.231324Z`) as Unix seconds."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # dbt: UTC


# --- manifest.json -------------------------------------------------------------------------

def parse_manifest(doc: Json, path: str) -> dict[str, Test]:
    """Return what the manifest says of each data test, by unique_id."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, dict):
        raise UsageError(f"{path}: nodes: expected an object of dbt nodes")
    return {uid: _test(node, uid) for uid, node in nodes.items()
            if uid.startswith("test.") and isinstance(node, dict)}


def _test(node: Json, uid: str) -> Test:
    config = _object(node.get("config"))
    severity: Severity = SEVERITY.get(str(config.get("severity", "error")).lower(), "critical")
    condition = config.get("error_if" if severity == "critical" else "warn_if", DEFAULT_IF)
    column = node.get("column_name")
    name = node.get("name")
    return Test(table=_display(tested_node(node) or uid),
                name=name if isinstance(name, str) and name else uid.split(".")[2],
                column=column if isinstance(column, str) and column else None,
                severity=severity, threshold=threshold(str(condition)))


def tested_node(node: Json) -> str | None:
    """Return the unique_id of the model, seed, snapshot or source a test is attached to.

    `attached_node` names it (models, dbt 1.5 on); a source test has none, so the dependency
    its `model` argument mentions; a singular test, its first dependency.
    """
    attached = node.get("attached_node")
    if isinstance(attached, str) and attached:
        return attached
    depends = _object(node.get("depends_on")).get("nodes")
    candidates = [uid for uid in depends if isinstance(uid, str) and uid.count(".") >= 2] \
        if isinstance(depends, list) else []
    argument = _model_argument(node)
    named = [uid for uid in candidates if _mentions(argument, uid)]
    return next(iter(named or candidates), None)


def _model_argument(node: Json) -> str:
    """Return a generic test's `model` argument: `{{ get_where_subquery(ref('orders')) }}`."""
    model = _object(_object(node.get("test_metadata")).get("kwargs")).get("model")
    return model if isinstance(model, str) else ""


def _mentions(argument: str, uid: str) -> bool:
    """Tell whether a test's model argument quotes the node's name."""
    name = uid.split(".")[-1] if uid.startswith("source.") else uid.split(".")[2]
    return f"'{name}'" in argument or f'"{name}"' in argument


def _display(uid: str) -> str:
    """Return a node's dq.table: `orders`, `orders.v2` (a version), `shop.payments` (a source)."""
    return ".".join(uid.split(".")[2:])


def threshold(condition: str) -> Threshold:
    """Return the failures bound of dbt's `error_if`/`warn_if` (`!= 0`, `> 10`, `>= 5`)."""
    match = _BOUND.match(condition)
    if match is None or (match.group(1) == "!=" and match.group(2) != "0"):
        return Threshold()  # not a one-sided bound on the count: no dq.check.threshold
    count = int(match.group(2))
    return Threshold(max=float(count - 1 if match.group(1) == ">=" else count))


# --- results and spans ---------------------------------------------------------------------

def import_run(nodes: Sequence[Node], tests: Mapping[str, Test] | None,
               warehouse: str = WAREHOUSE) -> Imported:
    """Map a run: a result per data test (sorted by table and check), a span per node."""
    data_tests = [node for node in nodes if node.resource_type == "test"]
    known = {n.unique_id: (tests or {}).get(n.unique_id) or guessed(n) for n in data_tests}
    results = sorted((test_result(node, known[node.unique_id], warehouse) for node in data_tests),
                     key=lambda r: (r.table, r.check))
    spans = [node_span(node, known.get(node.unique_id), warehouse) for node in nodes]
    return Imported(results, spans, _notes(data_tests, tests))


def guessed(node: Node) -> Test:
    """Return what a test's unique_id alone tells: its name and project, dbt's defaults."""
    return Test(table=node.project, name=node.name, column=None, severity="critical",
                threshold=threshold(DEFAULT_IF))


def _notes(data_tests: Sequence[Node], tests: Mapping[str, Test] | None) -> list[str]:
    if not data_tests:
        return ["no data tests in the run results: nothing to publish but spans"]
    if tests is None:
        return ["no --manifest: each test's dq.table is its dbt project and its severity "
                "critical unless dbt warned; pass target/manifest.json to attach tests to "
                "their models and sources"]
    missing = sorted(n.name for n in data_tests if n.unique_id not in tests)
    if missing:
        return [f"{len(missing)} test(s) not in the manifest (from another run?), published "
                f"under their dbt project: {', '.join(missing)}"]
    return []


def test_result(node: Node, test: Test, warehouse: str) -> CheckResult:
    """Return a data test's outcome as a `custom` check's result (the value: its failures)."""
    status = STATUS.get(node.status, "error")
    # dbt warns when the failures crossed warn_if but not error_if: a warning whatever the config
    severity: Severity = "warning" if node.status == "warn" else test.severity
    spec = CheckSpec(table=test.table, name=test.name, kind="custom", severity=severity,
                     threshold=test.threshold, params=_params(node, test),
                     columns=(test.column,) if test.column else ())
    value = node.failures if status != "error" else None
    return CheckResult(spec, warehouse, None, value, status, node.execution_time_s,
                       node.started_at_s, _error(node) if status == "error" else None)


def _params(node: Node, test: Test) -> Custom:
    """A stand-in for the custom check's parameters: dbt ran the SQL, dqmon never sees it."""
    return Custom.model_construct(name=test.name, sql=f"-- dbt {node.unique_id}",
                                  min=test.threshold.min, max=test.threshold.max)


def _error(node: Node) -> str:
    """Say why a test did not run: dbt's message up to its first blank line, without SQL."""
    if node.status == "skipped":
        return "skipped by dbt (a node it depends on failed or errored)"
    lines = []
    for line in (node.message or "").splitlines():
        if not line.strip():
            break
        if not line.strip().startswith("LINE "):
            lines.append(line.strip())
    return " ".join(lines) or f"dbt status {node.status}"


def node_span(node: Node, test: Test | None, warehouse: str) -> NodeSpan:
    """Return a node's span `dbt.<type> <name>`; an errored node's status is ERROR."""
    attributes: dict[str, str | int | float] = {
        "dq.warehouse": warehouse, "dbt.unique_id": node.unique_id,
        "dbt.resource_type": node.resource_type, "dbt.status": node.status}
    if test is not None:
        attributes.update({"dq.table": test.table, "dq.check": test.name})
    if test is not None and node.failures is not None:
        attributes["dbt.failures"] = int(node.failures)
    end_s = node.started_at_s if node.completed_at_s is None else node.completed_at_s
    return NodeSpan(f"dbt.{node.resource_type} {node.name}", attributes, node.started_at_s,
                    end_s, _error(node) if node.status == "error" else None)
