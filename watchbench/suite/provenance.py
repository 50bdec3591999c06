"""What a boot ran on, built once: a run's manifest (``suite.run.manifest``), a check's
record (``flows.check.provenance``) and, through the manifests, a shard's fingerprint
(``flows.shard``) all take these fields from here, so that they name and fill them alike.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import time
from pathlib import Path

from watchbench.kernel.build import Kernel
from watchbench.vm.qemu import MEASURES


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timestamp() -> str:
    """Now, in UTC, as every record says it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def argv_hash(argv: list[str]) -> str:
    """The QEMU argv's short hash: runs are compared only under equal ones."""
    return hashlib.sha256("\0".join(argv).encode()).hexdigest()[:16]


def booted_on(kernel: Kernel, accel: str, qemu: str, argv: list[str], *,
              kconfig_add: tuple[str, ...] | list[str] = (),
              kernel_args: tuple[str, ...] | list[str] = ()) -> dict[str, object]:
    """The host, the accelerator and QEMU (``qemu``: its version line; ``argv``: the
    normalized argv), and the kernel with what its build and boot were given beyond their
    defaults (settings ``kconfig_add``, ``kernel_args``), in the order a manifest lists
    them."""
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "arch": platform.machine(),
        "accel": accel,
        "measures": MEASURES.get(accel, "unknown accelerator"),
        "qemu_version": qemu,
        "qemu_argv": argv,
        "qemu_argv_hash": argv_hash(argv),
        "kernel_version": kernel.release,
        "kernel_key": kernel.key,
        "tree_base": kernel.base,
        "base_label": kernel.base_label,
        "series_name": kernel.series,
        "series_hash": kernel.series_hash,
        "dirty_hash": kernel.dirty_hash,
        "config_hash": kernel.config_hash,
        "kconfig_add": list(kconfig_add),
        "kernel_args": list(kernel_args),
        "compiler": kernel.compiler,
    }
