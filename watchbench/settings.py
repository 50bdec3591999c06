"""Settings: invoke.yaml defaults plus overrides, as one typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass
class QemuSettings:
    accel: str = "auto"
    memory_mb: int = 1024
    cpus: int = 2
    boot_timeout: float = 300.0


@dataclass
class Settings:
    """Everything a task needs to know about where things are and how to run them."""

    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "watchbench")
    runs_dir: Path = field(
        default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "watchbench" / "runs"
    )
    kernel_package: str = "linux-source-6.12"
    kernel_version: str = "6.12.117-1~deb12u1"
    jobs: int = 0
    ccache: bool = True
    fragments: tuple[str, ...] = ("base", "watch_queue", "guest-9p")
    # Our in-kernel benchmark patch: `all` and `ci` apply it under every series measured.
    bench_series: str = "watch_queue-bench"
    qemu: QemuSettings = field(default_factory=QemuSettings)
    project_root: Path = PROJECT_ROOT

    @property
    def job_count(self) -> int:
        return self.jobs or os.cpu_count() or 1

    @property
    def patches_dir(self) -> Path:
        return self.project_root / "patches"

    @property
    def kconfig_dir(self) -> Path:
        return self.project_root / "kconfig"

    def scratch(self, cache_dir: Path, shared: tuple[str, ...] = ("downloads",)) -> Settings:
        """A copy with a cache (and runs dir) of its own that links ``shared`` directories of
        this cache, so tests and figure scripts never touch the developer's active tree."""
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name in shared:
            (self.cache_dir / name).mkdir(parents=True, exist_ok=True)
            link = cache_dir / name
            if not link.exists():
                link.symlink_to(self.cache_dir / name)
        return replace(self, cache_dir=cache_dir, runs_dir=cache_dir / "runs")

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> Settings:
        """Build from the ``watchbench`` section of invoke's config (plain dicts)."""
        data = dict(data or {})
        s = cls()
        if data.get("cache_dir"):
            s.cache_dir = Path(os.path.expanduser(str(data["cache_dir"])))
        if data.get("runs_dir"):
            s.runs_dir = Path(os.path.expanduser(str(data["runs_dir"])))
        kernel = data.get("kernel") or {}
        s.kernel_package = str(kernel.get("package", s.kernel_package))
        s.kernel_version = str(kernel.get("version", s.kernel_version))
        s.jobs = int(data.get("jobs", s.jobs) or 0)
        s.ccache = bool(data.get("ccache", s.ccache))
        s.bench_series = str(data.get("bench_series", s.bench_series) or "")
        if data.get("fragments"):
            s.fragments = tuple(str(f) for f in data["fragments"])
        q = data.get("qemu") or {}
        s.qemu = QemuSettings(
            accel=str(q.get("accel", s.qemu.accel)),
            memory_mb=int(q.get("memory_mb", s.qemu.memory_mb)),
            cpus=int(q.get("cpus", s.qemu.cpus)),
            boot_timeout=float(q.get("boot_timeout", s.qemu.boot_timeout)),
        )
        return s
