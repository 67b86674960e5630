"""Every malformed config in tests/configs/bad gets exactly its located one-line errors.

Each corpus file states what `dqmon validate` must print in header comments:
`# expect: FILE:LINE PATH: MESSAGE` (one per line, in order), optionally `# env: NAME=value`
for the run's environment and `# secret: TEXT` that must appear nowhere in the output.
A file that cannot hold comments (the empty one) keeps its headers in `<name>.expect`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dqmon.config import parse_config
from dqmon.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[1] / "configs" / "bad"
CASES = sorted(p.name for p in CORPUS.glob("*.yaml"))


@dataclass(frozen=True)
class Case:
    """What one corpus file promises."""

    expect: list[str]
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """How the real CLI answered."""

    code: int
    stdout: str
    stderr: str


def read_case(name: str) -> Case:
    """Parse the `# expect:`, `# env:` and `# secret:` headers of a corpus file."""
    sidecar = CORPUS / f"{name}.expect"
    source = sidecar if sidecar.exists() else CORPUS / name
    text = source.read_bytes().decode("utf-8", errors="replace")
    case = Case(expect=[])
    for line in text.splitlines():
        key, _, value = line.removeprefix("# ").partition(": ")
        if key == "expect":
            case.expect.append(value)
        elif key == "env":
            variable, _, setting = value.partition("=")
            case.env[variable] = setting
        elif key == "secret":
            case.secrets.append(value)
    return case


def run_validate(config: str, env: dict[str, str], cwd: Path = CORPUS) -> Run:
    """Run `python -m dqmon validate --config CONFIG` as a user would."""
    base = {k: v for k, v in os.environ.items() if k not in ("NOPE", "DQMON_CONFIG")}
    proc = subprocess.run([sys.executable, "-m", "dqmon", "validate", "--config", config],
                          cwd=cwd, env={**base, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Run the CLI on the whole corpus, four processes at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda name: run_validate(name, read_case(name).env), CASES)
        return dict(zip(CASES, results, strict=True))


def test_corpus_is_large_and_every_file_states_its_errors() -> None:
    """The corpus holds at least 20 files and each one says which lines it expects."""
    assert len(CASES) >= 20
    assert [name for name in CASES if not read_case(name).expect] == []


@pytest.mark.parametrize("name", CASES)
def test_bad_config_is_reported_exactly(name: str, runs: dict[str, Run]) -> None:
    """`dqmon validate` exits 2 and prints exactly the expected `file:line path: message` lines."""
    case, run = read_case(name), runs[name]
    assert run.stderr.splitlines() == case.expect
    assert run.code == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    for secret in case.secrets:
        assert secret not in run.stderr + run.stdout


def test_missing_file_is_one_located_error(tmp_path: Path) -> None:
    """A --config path that does not exist is named in one line, exit 2, no traceback."""
    run = run_validate("no/such/checks.yaml", {}, cwd=tmp_path)
    assert (run.code, run.stdout) == (2, "")
    assert run.stderr == "no/such/checks.yaml:1: cannot read the file: No such file or directory\n"


def test_directory_is_one_located_error(tmp_path: Path) -> None:
    """A --config path that is a directory is named in one line, exit 2."""
    (tmp_path / "conf").mkdir()
    run = run_validate("conf", {}, cwd=tmp_path)
    assert (run.code, run.stdout) == (2, "")
    assert run.stderr == "conf:1: cannot read the file: Is a directory\n"


SEVERAL = """\
version: 1
warehouses:
  main: {url: "${NOPE}", max_connections: 0}
defaults: {schedule: "every 5 minutes"}
tables:
  - name: orders
    warehouse: mian
    colour: blue
    checks:
      - row_count: {min: 1}
      - row_count: {max: 10}
      - completeness: {columns: [id], min_ratio: 2}
      - validity: {name: ok, column: status, in: [a], regex: x}
  - name: orders
    where: "1=1; delete from orders"
    checks:
      - schema: {columns: {id: int}}
"""


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    """One load reports all problems, each at its line, in line order (not just the first)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(SEVERAL, "checks.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        "checks.yaml:3 warehouses.main.max_connections: must be at least 1",
        "checks.yaml:3 warehouses.main.url: environment variable NOPE is not set "
        "(set it, or write ${NOPE:-default})",
        "checks.yaml:4 defaults.schedule: 'every 5 minutes' is not 'every <duration>' "
        "(use 90s, 15m, 2h, 1d or a number of seconds)",
        "checks.yaml:7 tables[0].warehouse: unknown warehouse 'mian' (defined: main)",
        "checks.yaml:8 tables[0].colour: unknown key 'colour' (expected one of name, warehouse, "
        "table, where, partition, schedule, severity, segment_by, key, samples, checks)",
        "checks.yaml:11 tables[0].checks[1].row_count: duplicate check name 'row_count' in "
        "table 'orders' (first at line 10)",
        "checks.yaml:12 tables[0].checks[2].completeness.min_ratio: must be between 0 and 1",
        "checks.yaml:13 tables[0].checks[3].validity: give exactly one of condition, in, not_in, "
        "regex, not_regex, between (found: in, regex)",
        "checks.yaml:14 tables[1].name: duplicate table name 'orders' (first at line 6)",
        "checks.yaml:15 tables[1].where: must be one expression (found ';')",
        "checks.yaml:17 tables[1].checks[0].schema.columns.id: must be 'integer', 'numeric', "
        "'text', 'boolean', 'date', 'timestamp', 'json' or 'other'",
    ]
