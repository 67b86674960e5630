"""Fuzzed checks.yaml texts never crash dqmon: a Config or a ConfigError, promptly (issue 8).

Seeds are the repo's valid files (checks.yaml, deploy/checks.yaml), a few valid files that use
every check kind, partitions and dialect, and the corpus of tests/unit/test_config_corpus.py.
Each example mutates a seed: random bytes and control characters, deleted or duplicated lines,
changed indentation, values swapped for random scalars, huge numbers and unicode.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dqmon.cli import main
from dqmon.config import Config, ConfigError, parse_config
from dqmon.errors import UsageError
from dqmon.inspect import show_sql_text
from dqmon.warehouse import open_warehouses

ROOT = Path(__file__).resolve().parents[2]
BUDGET_S = 5.0  # per example: generous, a parse takes milliseconds; a hang fails instead of stalls
ENV = {"DQMON_WAREHOUSE_URL": "sqlite:///demo/warehouse.db", "DQMON_KEY": "max_connections"}

EVERY_KIND = """\
version: 1
warehouses:
  main: {url: "postgresql+psycopg://dqmon@localhost/shop", statement_timeout: 30s,
         timezone: Europe/Berlin}
  lite: {url: "sqlite:///demo/warehouse.db"}
  maria: {url: "mysql+pymysql://dqmon@localhost/shop"}
  duck: {url: "duckdb:///demo/warehouse.duckdb"}
defaults: {schedule: every 5m, severity: warning}
tables:
  - name: events
    warehouse: main
    table: public.events
    where: "kind <> 'test'"
    partition: {column: at, granularity: hour, lag: 2}
    schedule: "*/10 * * * 1-5"
    checks:
      - freshness: {column: at, max_age: 1h}
      - row_count: {min: 0, max: 100}
      - completeness: {columns: [id, kind], min_ratio: 0.5}
      - validity: {name: kind_known, column: kind, in: [a, b]}
      - validity: {name: score_range, column: score, between: [-1.5, 2]}
      - validity: {name: flag_set, column: flag, in: [true]}
      - validity: {name: code_known, column: code, in: [1, 2.5, 3]}
      - validity: {name: code_format, column: code, regex: '^[A-Z]{2}$'}
      - uniqueness: {columns: [id, kind]}
      - schema: {columns: {id: integer, at: timestamp, kind: text}}
      - custom: {name: late, sql: "select count(*) from events where late", min: 0, max: 1}
  - name: days
    warehouse: lite
    partition: {column: day, lag: 3660}
    checks: [{row_count: {min: 1}}, {validity: {name: pos, condition: "n > 0"}}]
  - name: people
    warehouse: maria
    checks: [{uniqueness: {columns: [email]}}, {freshness: {column: seen, max_age: 2d}}]
  - name: ducks
    warehouse: duck
    partition: {column: at, granularity: day}
    checks: [{completeness: {columns: [x], min_ratio: 1}}]
"""

COMPILED_ONLY = """\
version: 1
warehouses:
  snow: {url: "snowflake://u@acct/db/schema"}
  big: {url: "bigquery://project/dataset"}
  tri: {url: "trino://u@host:8080/catalog"}
tables:
  - {name: s, warehouse: snow, partition: {column: d, lag: 1}, checks: [{row_count: {min: 1}}]}
  - {name: b, warehouse: big, checks: [{validity: {name: v, column: c, in: [x, y]}}]}
  - {name: t, warehouse: tri, checks: [{uniqueness: {columns: [k]}}]}
"""


def _corpus() -> list[str]:
    """Return the texts of the located-errors corpus (tests/unit/test_config_corpus.py)."""
    from test_config_corpus import CORPUS, SEVERAL  # a sibling test module (rootdir import)

    files = sorted(CORPUS.glob("*.yaml"))
    return [*(f.read_bytes().decode("utf-8", errors="replace") for f in files), SEVERAL]


VALID = [*((ROOT / name).read_text() for name in ("checks.yaml", "deploy/checks.yaml")),
         EVERY_KIND, COMPILED_ONLY]
CORPUS_TEXTS = _corpus()
CONTROL = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85,
                            0x9B, 0xFFFE, 0xFEFF, 0x2028, 0xD800]]
SCALARS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["0", "-1", "1e309", "-1e309", ".nan", ".inf", "-.inf", "1_000_000_000",
                     "0x7fffffffffffffff", "9" * 5000, "99999999999", "2026-11-20",
                     "9999-12-31T23:59:59", "null", "~", "true", "no", "''", '""', "[]", "{}",
                     "[1, a]", "[true, 1]", "*a", "&a x", "!!binary AAAA", "!!python/none",
                     "!!int x", "!!float y", "!!timestamp 0", "|", ">", "'", "\"", "[", "{",
                     "every 0s", "every 1e9d", "* * * * *", "61 * * * *", "1000000",
                     "\"${NOPE}\"", "${DQMON_KEY}", "select 1; select 2", "\"1=1 or (\"",
                     "1" + "0" * 400, "[1.5, 1" + "0" * 400 + "]", "[1, 2.5]"]),
    st.text(max_size=20),
    st.floats().map(repr),
)
SWAP = st.tuples(st.just("value"), st.floats(0, 1), SCALARS)
MUTATIONS = st.one_of(
    SWAP, SWAP, SWAP,  # weighted: a swapped value keeps the file YAML more often than an insert
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(CONTROL)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.floats(0, 1),
              st.binary(min_size=1, max_size=4).map(lambda b: b.decode("latin-1"))),
    st.tuples(st.just("delete_line"), st.floats(0, 1), st.just("")),
    st.tuples(st.just("duplicate_line"), st.floats(0, 1), st.just("")),
    st.tuples(st.just("indent"), st.floats(0, 1), st.sampled_from(["  ", " ", "\t", "-", "- "])),
    st.tuples(st.just("dedent"), st.floats(0, 1), st.just("")),
)


def mutate(text: str, mutation: tuple[str, float, str]) -> str:
    """Apply one mutation at a relative position of `text`."""
    kind, where, payload = mutation
    if kind == "insert":
        at = int(where * len(text))
        return text[:at] + payload + text[at:]
    lines = text.splitlines(keepends=True) or [""]
    i = min(int(where * len(lines)), len(lines) - 1)
    line = lines[i]
    if kind == "delete_line":
        changed = []
    elif kind == "duplicate_line":
        changed = [line, line]
    elif kind == "indent":
        changed = [payload + line]
    elif kind == "dedent":
        changed = [line[min(2, len(line) - len(line.lstrip(" "))):]]
    else:
        changed = [_swap_value(line, payload, where * len(lines) % 1)]
    return "".join([*lines[:i], *changed, *lines[i + 1:]])


VALUE_TOKEN = re.compile(r"(?<=: )[^,{}\[\]\n]+")  # a value in block or flow style


def _swap_value(line: str, scalar: str, which: float) -> str:
    """Replace one `key: value` token of a line (chosen by `which`) with `scalar`."""
    tokens = list(VALUE_TOKEN.finditer(line))
    if not tokens:
        return line
    token = tokens[min(int(which * len(tokens)), len(tokens) - 1)]
    return line[:token.start()] + scalar + line[token.end():]


# --- data-level mutations: always valid YAML, so they reach validation and SQL building --------

KEYS = ["name", "column", "columns", "in", "between", "regex", "condition", "min", "max",
        "min_ratio", "lag", "granularity", "partition", "schedule", "severity", "url", "timezone",
        "statement_timeout", "max_connections", "where", "table", "warehouse", "sql", "max_age",
        "checks", "custom", "validity", "schema", "row_count", "freshness", "<<"]
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40), st.floats(),
    st.sampled_from([10**400, -(2**63), 2**64, 1e308, 5e-324]),
    st.text(max_size=12), st.dates().map(str), st.datetimes(),
    st.sampled_from(["every 1s", "every 0s", "every 1e9d", "* * * * 0", "0 0 31 2 *", "1e309",
                     "Europe/Berlin", "Mars/Olympus", "hour", "day", "week", "critical", "info",
                     "sqlite:///x.db", "postgresql+psycopg://u:pw@h/db", "mysql+pymysql://u@h/d",
                     "duckdb:///x.duckdb", "snowflake://u@a/d", "bigquery://p/d", "trino://u@h/c",
                     "nope://x", "select 1", "select 1; select 2", "1=1) or (1=1", "x > 0",
                     "${NOPE}", "${DQMON_KEY:-3}", "a\x00b", "\u202e", "😀", "a.b.c", "."]),
)
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner,
                                        max_size=3), max_leaves=6)
VALID_DATA = [yaml.safe_load(text) for text in VALID]


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Return the path of every value in `data`, containers included."""
    found = [path]
    items = data.items() if isinstance(data, dict) else \
        enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found += _paths(value, (*path, key))
    return found


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return `data` with the value at `path` replaced (or added under a new key)."""
    if not path:
        return value
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return data


@st.composite
def data_mutated_configs(draw: st.DrawFn) -> str:
    """Draw a valid seed's data, replace or add one to three values, and dump it as YAML."""
    data = copy.deepcopy(draw(st.sampled_from(VALID_DATA)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(data)))
        if draw(st.booleans()) and path and isinstance(_at(data, path), dict):
            path = (*path, draw(st.sampled_from(KEYS)))  # add a key beside the others
        data = _replaced(data, path, draw(VALUES))
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def fuzzed_configs(draw: st.DrawFn) -> str:
    """Draw a seed and one to four mutations of it."""
    text = draw(st.sampled_from(VALID) | st.sampled_from(CORPUS_TEXTS))  # about half valid
    for mutation in draw(st.lists(MUTATIONS, min_size=1, max_size=4)):
        text = mutate(text, mutation)
    return text


class OverBudget(BaseException):
    """An example ran past its time budget (a BaseException: no `except Exception` hides it)."""


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise OverBudget if the block runs longer than `seconds` (main thread, SIGALRM)."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise OverBudget(f"took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_and_compile(text: str) -> Config | None:
    """Parse `text` and render its SQL like `validate --show-sql`; None for a ConfigError."""
    try:
        config = parse_config(text, "fuzz.yaml", env=ENV)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError names at least one problem"
        return None
    with contextlib.suppress(ConfigError, UsageError):
        show_sql_text(config, open_warehouses(config.warehouses))
    return config


def test_valid_seeds_load_and_corpus_seeds_do_not() -> None:
    """The valid seeds load and compile (mutations reach SQL building); the corpus fails."""
    assert all(load_and_compile(text) is not None for text in VALID)
    assert not any(load_and_compile(text) for text in CORPUS_TEXTS)


FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_promptly(text: str) -> None:
    """Load and compile `text` inside the time budget."""
    started = time.perf_counter()
    with time_budget(BUDGET_S):
        load_and_compile(text)
    assert time.perf_counter() - started < BUDGET_S


@settings(FUZZ, max_examples=800)
@given(fuzzed_configs())
def test_mutated_texts_give_a_config_or_config_errors_promptly(text: str) -> None:
    """parse_config returns a Config or raises ConfigError, and a Config compiles its SQL."""
    check_promptly(text)


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(VALID), st.lists(SWAP, min_size=1, max_size=3))
def test_valid_texts_with_swapped_values_never_crash(text: str,
                                                     swaps: list[tuple[str, float, str]]) -> None:
    """Random scalars in place of a valid file's values give ConfigError or compiled SQL."""
    for swap in swaps:
        text = mutate(text, swap)
    check_promptly(text)


@settings(FUZZ, max_examples=600)
@given(data_mutated_configs())
def test_valid_data_with_random_values_never_crashes(text: str) -> None:
    """Random values and keys anywhere in a valid file's data give ConfigError or compiled SQL."""
    check_promptly(text)


LOCATED = re.compile(r"^\S+\.yaml:\d+[ :]")


@settings(FUZZ, max_examples=120)
@given(fuzzed_configs() | data_mutated_configs())
def test_validate_on_fuzzed_files_exits_0_or_2_without_traceback(text: str) -> None:
    """`dqmon validate --show-sql` through `dqmon.cli.main` exits 0 or 2, located, no traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        out, err, code = io.StringIO(), io.StringIO(), None
        started = time.perf_counter()
        with time_budget(BUDGET_S), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            try:
                main(["validate", "--show-sql", "--config", str(path)])
            except SystemExit as exited:
                code = exited.code
    assert time.perf_counter() - started < BUDGET_S
    assert "Traceback" not in err.getvalue()
    assert code in (0, 2)
    if code == 2:  # every line is one located problem, even for keys holding "\n"
        lines = err.getvalue().splitlines()
        assert lines and all(LOCATED.match(line) for line in lines), err.getvalue()
