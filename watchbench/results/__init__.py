"""The results store: raw benchmark outputs in, one tidy long-format table out."""

from watchbench.results.schema import COLUMNS, KERNEL_IDENTITY, SCHEMA_VERSION
from watchbench.results.store import empty_frame, ingest_run, load_runs, parse_run, read_results

__all__ = [
    "COLUMNS",
    "KERNEL_IDENTITY",
    "SCHEMA_VERSION",
    "empty_frame",
    "ingest_run",
    "load_runs",
    "parse_run",
    "read_results",
]
