"""Files that are never seen half-written.

A command can be killed at any instruction. Everything another command trusts by its name
(a tree's state, a journal, a manifest, a report) is written to a sibling temporary file
and renamed into place, so a reader sees the old content or the new one, never a torn one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomically(path: Path, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` (text as UTF-8) in one rename; return the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
