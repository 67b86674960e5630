"""Check kinds as pure functions: the SQL each adds to a query, and what the answer means.

Nothing here opens a connection; `scan.py` runs what these build.
"""

from dqmon.checks.aggregate import ScanAnswer, aggregate_query, evaluate_aggregate, read_scan
from dqmon.checks.other import (
    custom_query,
    evaluate_custom,
    evaluate_schema,
    evaluate_uniqueness,
    type_family,
    type_family_from_name,
    uniqueness_query,
)
from dqmon.checks.partials import Partials, finalize
from dqmon.checks.scope import Scope
from dqmon.checks.statistics import evaluate_statistic, statistic_query

__all__ = [
    "Partials", "ScanAnswer", "Scope", "aggregate_query", "custom_query", "evaluate_aggregate",
    "evaluate_custom", "evaluate_schema", "evaluate_statistic", "evaluate_uniqueness",
    "finalize", "read_scan", "statistic_query", "type_family", "type_family_from_name",
    "uniqueness_query",
]
