"""Check kinds as pure functions: the SQL each adds to a query, and what the answer means.

Nothing here opens a connection; `scan.py` runs what these build.
"""

from dqmon.checks.aggregate import aggregate_query, evaluate_aggregate
from dqmon.checks.other import (
    custom_query,
    evaluate_custom,
    evaluate_schema,
    evaluate_uniqueness,
    type_family,
    type_family_from_name,
    uniqueness_query,
)
from dqmon.checks.scope import Scope

__all__ = [
    "Scope", "aggregate_query", "custom_query", "evaluate_aggregate", "evaluate_custom",
    "evaluate_schema", "evaluate_uniqueness", "type_family", "type_family_from_name",
    "uniqueness_query",
]
