"""The results store: raw benchmark outputs in, one tidy long-format table out.

The names below are looked up when first used (PEP 562), so that importing a submodule
that reads no table (``rundir``, ``catalog``: ``wb runs``) does not import pandas."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"COLUMNS": "schema", "KERNEL_IDENTITY": "schema", "SCHEMA_VERSION": "schema",
          "empty_frame": "store", "ingest_run": "store", "load_runs": "store",
          "parse_run": "store", "read_results": "store"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"watchbench.results.{_WHERE[name]}"), name)
