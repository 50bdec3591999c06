"""Settings: the single source of every default, plus the user's overrides, as one typed object.

The defaults are the dataclass fields below and nowhere else. ``tasks.py`` hands them to
invoke as the collection's configuration, so ``invoke.yaml``, ``~/.invoke.yaml`` and
``INVOKE_WATCHBENCH_*`` variables can override any of them by the same names; a name
that is not a setting is refused with the list of known ones (``from_mapping``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_type_hints

from watchbench.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass
class KernelSettings:
    """The Debian source package (and pinned version) used when no --tree/--tarball is given."""

    package: str = "linux-source-6.12"
    version: str = "6.12.117-1~deb12u1"


@dataclass
class QemuSettings:
    accel: str = "auto"  # auto | kvm | tcg | icount (vm.qemu.Accel, or auto: probe KVM by booting)
    memory_mb: int = 1024
    cpus: int = 2
    boot_timeout: float = 300.0  # seconds a boot may take before the guest is killed
    # qemu-plugin.h for the instruction-count plugin; empty: /usr/include, else the header of
    # Debian's qemu source package at the installed QEMU's version (vm.plugin)
    plugin_header: str = ""


@dataclass(frozen=True)
class Judgement:
    """How a change is judged (``stats.decision.decide``), alike for ci, compare, report
    and bisect: the smallest change that counts (a symmetric margin in log space), the
    family-wise alpha, and the smallest between-boot spread believed (icount measured
    0.17 %)."""

    threshold: float = 0.05
    alpha: float = 0.01
    noise_floor: float = 0.001


@dataclass
class CiSettings:
    """``inv ci``: paired rounds, ``rounds`` auto: look after ``min_rounds``, then every
    ``round_step``, until every gated metric is decided, up to ``max_rounds`` or
    ``budget_s`` seconds of boots (alpha is spent across the looks); or a fixed number."""

    rounds: str = "auto"
    min_rounds: int = 4
    round_step: int = 2
    max_rounds: int = 12
    budget_s: float = 1200.0
    accel: str = "icount"  # vm.qemu.Accel; icount: near-deterministic timings
    profile: str = "changed"  # flows.explain.Explain: which metrics to say where they moved
    suite: str = "ci"
    # Boots at once (0: the core count under icount, where figures count instructions and
    # not host time; always 1 under tcg and kvm, whose timings move with host load).
    jobs: int = 0


@dataclass
class CheckSettings:
    """``inv check`` (and ``inv ci --check``): the candidate built with the debug fragments
    and booted once through the API conformance suite, the fault pass, the race stress and
    the real clients (suite.check). Never under icount: the stress needs CPUs that really
    run side by side (plain TCG's MTTCG, or KVM)."""

    # Added to the default fragments (``fragments``): KASAN, lockdep, KFENCE, kmemleak and
    # fault injection (kconfig/debug.config).
    fragments: tuple[str, ...] = ("debug",)
    accel: str = "auto"  # auto | kvm | tcg (vm.qemu.Accel; auto: KVM only if it boots)
    stress_seconds: int = 20  # how long userspace/wq-stress.c races (wq-stress --seconds)
    # keyutils' own tests (its source package's tests/ directories) run in the guest, each
    # under `keyctl watch_session`, its notifications checked off. Three keep a warm check
    # under 5 min here (README: their times; keyctl/invalidate/valid adds 23-40 s, and its
    # record is checked by keyctl-client; unlink/valid took 247 s and clear/valid 129 s).
    keyutils_tests: tuple[str, ...] = ("keyctl/link/valid", "keyctl/revoke/valid",
                                       "keyctl/update/userupdate")


@dataclass
class BisectSettings:
    rounds: int = 3  # boots per commit
    accel: str = "icount"
    suite: str = "ci"
    metric: str = "ns_per_op"


@dataclass
class Settings:
    """Everything a task needs to know about where things are and how to run them."""

    # Downloads, kernel trees, builds and ccache ("" in a config = $XDG_CACHE_HOME/watchbench).
    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "watchbench")
    # Benchmark runs, the results history ("" = $XDG_DATA_HOME/watchbench/runs).
    runs_dir: Path = field(
        default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "watchbench" / "runs"
    )
    # Where report, compare and ci write reports (relative: to the current directory).
    reports_dir: Path = Path("reports")
    kernel: KernelSettings = field(default_factory=KernelSettings)
    jobs: int = 0  # parallel make jobs (0 = number of CPUs)
    ccache: bool = True
    # ccache's remote_storage behind the local cache, shared by a team or CI ("" = none):
    # e.g. "redis://cache.example.org:6379" (kernel.ccache; INVOKE_WATCHBENCH_CCACHE_REMOTE).
    ccache_remote: str = ""
    # Kconfig fragments merged onto allnoconfig, in order (names under kconfig/).
    fragments: tuple[str, ...] = ("base", "watch_queue", "guest-9p")
    # Our in-kernel benchmark series: `all`, `ci` and the tests apply it under every series
    # measured (and add the kconfig fragment of the same name). "" turns that off.
    bench_series: str = "watch_queue-bench"
    suite: str = "quick"  # the benchmark suite of `all` and `bench` (bench/suites/<name>.toml)
    qemu: QemuSettings = field(default_factory=QemuSettings)
    decision: Judgement = field(default_factory=Judgement)
    ci: CiSettings = field(default_factory=CiSettings)
    bisect: BisectSettings = field(default_factory=BisectSettings)
    check: CheckSettings = field(default_factory=CheckSettings)
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

    def as_mapping(self) -> dict[str, Any]:
        """Plain values (invoke's configuration format); ``from_mapping`` reads them back."""
        return _plain(self, exclude={"project_root"})

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> Settings:
        """Build from the ``watchbench`` section of invoke's config (plain dicts). Every
        key must name a setting: a typo in a config file is an error, not a silent default."""
        return _build(cls, dict(data or {}), "watchbench", exclude={"project_root"})


def _plain(obj: Any, exclude: set[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name in exclude:
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = _plain(value)
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


# Settings that moved: a config naming the old place is told the new one.
MOVED = {"watchbench.ci.threshold": "watchbench.decision.threshold",
         "watchbench.ci.alpha": "watchbench.decision.alpha",
         "watchbench.ci.noise_floor": "watchbench.decision.noise_floor"}
# Empty in a config file means "the default" for these (a path, a list of fragments).
EMPTY_IS_DEFAULT = (Path, tuple[str, ...])


def _build(cls: type, data: dict[str, Any], where: str, exclude: set[str] = frozenset()) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    unknown = sorted(set(data) - set(known))
    if unknown:
        key = f"{where}.{unknown[0]}"
        if key in MOVED:
            raise InputError(f"setting {key} is now {MOVED[key]}",
                             hint="rename it in your invoke.yaml / ~/.invoke.yaml")
        raise InputError(f"unknown setting {key}",
                         hint=f"known settings of {where}: {', '.join(known)} "
                              f"(defaults: watchbench/settings.py)")
    values: dict[str, Any] = {}
    for name, value in data.items():
        kind, key = hints[name], f"{where}.{name}"
        if value is None or (kind in EMPTY_IS_DEFAULT and not value):
            continue  # null (or an empty path or list): the default
        if dataclasses.is_dataclass(kind):
            if not hasattr(value, "items"):
                raise InputError(f"setting {key}: expected a mapping, got {value!r}",
                                 hint=f"its keys are in watchbench/settings.py ({_kind_name(kind)})")
            values[name] = _build(kind, {k: v for k, v in value.items()}, key)
            continue
        try:
            values[name] = _coerce(kind, value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"setting {key}: {value!r} is not a valid {_kind_name(kind)}",
                             hint="see watchbench/settings.py for its meaning and default") from exc
    return cls(**values)


def _kind_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def _coerce(kind: Any, value: Any) -> Any:
    if kind is Path:
        return Path(os.path.expanduser(str(value)))
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if kind is str:
        return "" if value is None else str(value)
    if kind == tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(str(v) for v in value)
    raise TypeError(f"no coercion for {kind}")


JUDGEMENT = Judgement()  # the defaults statistics fall back to when a caller gives none
