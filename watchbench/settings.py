"""Settings: the single source of every default, plus the user's overrides, as one typed object.

The defaults are the dataclass fields below and nowhere else. ``cli/tasks.py`` hands them to
invoke as the collection's configuration, so ``invoke.yaml``, ``~/.invoke.yaml`` and
``INVOKE_WATCHBENCH_*`` variables can override any of them by the same names; a name
that is not a setting is refused with the list of known ones (``from_mapping``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_type_hints

from watchbench.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when run from one
DATA = "_data"  # the pipeline's files inside an installed package (pyproject.toml: package-dir)
ENV_PREFIX = "INVOKE_WATCHBENCH_"  # invoke's prefix for the settings' environment variables
SHOW = "./wb settings"  # the task that shows every setting and where it came from


@dataclass(frozen=True)
class Rule:
    """What a setting (or the option that stands for it) accepts beyond its type: an
    interval of numbers, maybe with words besides ("auto"), or a closed set of names.
    Declared here once, so the CLI, the config files and the environment agree."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False  # the interval excludes ``low``
    open_high: bool = False
    words: tuple[str, ...] = ()  # accepted besides a number
    choices: tuple[str, ...] = ()  # the only values accepted
    # A text's own test (kernel_args, kconfig_add): why the value is refused, "" if it is
    # not; ``shape`` says what it accepts.
    check: Callable[[Any], str] | None = None
    shape: str = ""

    def allows(self, value: Any) -> bool:
        if self.check is not None:
            return not self.check(value)
        if self.choices:
            return value in self.choices
        if isinstance(value, str) and value in self.words:
            return True
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return False
        return not ((self.low is not None and (value < self.low or
                                               (self.open_low and value == self.low)))
                    or (self.high is not None and (value > self.high or
                                                   (self.open_high and value == self.high))))

    def refusal(self, value: Any) -> str:
        """Why ``value`` is refused ("" if it is not): a text's own reason, or what a
        number must be."""
        if self.check is not None:
            return self.check(value)
        return "" if self.allows(value) else f"must be {self.describe()}"

    def describe(self) -> str:
        """'in (0, 1)', '>= 2 or auto', 'one of a, b'."""
        if self.shape:
            return self.shape
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.low is not None and self.high is not None:
            text = (f"in {'(' if self.open_low else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{')' if self.open_high else ']'}")
        elif self.low is not None:
            text = f"{'>' if self.open_low else '>='} {_num(self.low)}"
        elif self.high is not None:
            text = f"{'<' if self.open_high else '<='} {_num(self.high)}"
        else:
            text = "any number"
        return " or ".join([text, *self.words])


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def ruled(default: Any, rule: Rule | None = None, *, option: str = "", example: str = "",
          local: bool = False) -> Any:
    """A dataclass field with its ``Rule`` (checked by ``Settings.from_mapping``).

    ``option``: ``./wb ci`` takes it for one run as ``--NAME`` (a setting of ``ci`` or
    ``decision``), with this help; the task's help, the option's parse and the flow's
    option derive from this declaration (``ci_options``). ``example``: the value its
    error hint shows (default: the default). ``local``: a runner may choose it for
    itself (boots at once, what to explain), so the shards of one gate need not agree
    on it (``flows.shard.DESIGN``)."""
    meta: dict[str, Any] = {"rule": rule} if rule is not None else {}
    if option:
        meta.update(option=option, example=example or str(default))
    return field(default=default, metadata={**meta, "local": local})


ACCELS = ("kvm", "tcg", "icount")  # vm.qemu.Accel (a test keeps the two equal)
POSITIVE = Rule(0, open_low=True)
AT_LEAST_0, AT_LEAST_1, AT_LEAST_2 = Rule(0), Rule(1), Rule(2)


# --kconfig-add / kconfig_add: one option as a fragment line sets it (kernel.kconfig reads
# it with the fragments' parser; a test keeps the two in step).
KCONFIG_ADD = re.compile(r'CONFIG_[A-Z0-9_]+=(y|m|n|-?[0-9]+|0x[0-9A-Fa-f]+|"(?:[^"\\\n]|\\.)*")')
KCONFIG_ADD_SHAPE = 'CONFIG_NAME=y|m|n|<number>|"<string>"'
# --kernel-args / kernel_args: the kernel splits its command line at spaces outside
# double quotes. The parameters watchbench sets or relies on (vm.qemu's own ``append``,
# the guest's /init, a console that shows every splat) cannot be given again: a second
# value would win, and the run would break or miss a crash. Names compare as the kernel
# compares them (``-`` and ``_`` alike).
KERNEL_WORD = re.compile(r'(?:[^\s"]+|"[^"]*")+')
RESERVED_KERNEL_ARGS = {
    "console": "the console watchbench reads (ttyS0; ttyS1 carries the results)",
    "panic": "panic=-1 ends a boot that panics at once",
    "oops": "oops=panic makes an oops end the boot",
    "init": "the guest's /init runs the job",
    "rdinit": "the guest's /init runs the job",
    "loglevel": "a lower level hides the splats the gate and check look for",
    "quiet": "it hides the warnings the gate and check look for",
}
MAX_KERNEL_ARGS = 1024  # characters: x86 takes 2048 in all, watchbench's own included
KERNEL_ARGS_SHAPE = ("boot parameters separated by spaces, e.g. \"nokaslr "
                     "mitigations=off\"")


def kernel_words(text: str) -> tuple[str, ...]:
    """The parameters of a kernel command line, each as the kernel splits them."""
    return tuple(KERNEL_WORD.findall(text))


def kernel_args_refusal(text: Any) -> str:
    """Why extra boot parameters cannot be used ("" if they can)."""
    if not isinstance(text, str):
        return f"must be {KERNEL_ARGS_SHAPE}"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return "holds a control character (a newline?): give the parameters on one line"
    if len(text) > MAX_KERNEL_ARGS:
        return f"is {len(text)} characters long; at most {MAX_KERNEL_ARGS} fit the command line"
    if text.count('"') % 2:
        return 'has an unbalanced double quote (a value with spaces is name="a b")'
    for word in kernel_words(text):
        if word == "--":
            return "holds --: what follows it goes to the guest's /init, which runs the job"
        name = word.split("=", 1)[0].replace("-", "_")
        if name in RESERVED_KERNEL_ARGS:
            return (f"sets {name}, which watchbench sets or relies on: "
                    f"{RESERVED_KERNEL_ARGS[name]}; leave it out")
    return ""


def kconfig_add_refusal(items: Any) -> str:
    """Why kconfig additions cannot be used ("" if they can): each must be one option
    set as a fragment sets it, and no option twice with two values."""
    if isinstance(items, str) or not isinstance(items, list | tuple):
        return f"must be a list of {KCONFIG_ADD_SHAPE}"
    seen: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str) or not KCONFIG_ADD.fullmatch(item):
            return f"{item!r} is not {KCONFIG_ADD_SHAPE}"
        name = item.split("=", 1)[0]
        if seen.get(name, item) != item:
            return f"{item!r} contradicts {seen[name]!r}: give each option once"
        seen[name] = item
    return ""


# The instruction-count plugin's cache model (vm.cachemodel.CacheModel; a test keeps the two
# equal) and its levels as the plugin takes them (vm/wb-insns.c checks the same bounds).
CACHE_MODELS = ("off", "on")
# The gate's: auto is the model wherever it can run (icount), instructions alone elsewhere.
GATE_CACHE_MODELS = ("auto", *CACHE_MODELS)
CACHE_LEVEL_SHAPE = ("SIZE:ASSOC:LINE, e.g. 32K:8:64 (SIZE in bytes or with K/M, <= 4G; "
                     "ASSOC <= 1024; LINE 4..4096; LINE and SIZE / (ASSOC * LINE) powers "
                     "of two)")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20}


def _power_of_two(value: int) -> bool:
    return value > 0 and not value & (value - 1)


def cache_level(text: str) -> tuple[int, int, int]:
    """``SIZE:ASSOC:LINE`` as (size, associativity, line) in bytes, bounded as the plugin
    bounds them (ValueError otherwise): refused here, before a boot, not by QEMU in it."""
    parts = str(text).strip().split(":")
    match = [re.fullmatch(r"([0-9]+)([kKmM]?)", p) for p in parts]
    if len(parts) != 3 or not all(match):
        raise ValueError(f"{text!r} is not SIZE:ASSOC:LINE")
    size, assoc, line = (int(m.group(1)) * _UNITS[m.group(2).lower()] for m in match if m)
    if not (0 < size <= 1 << 32 and 0 < assoc <= 1024 and 4 <= line <= 4096
            and _power_of_two(line) and size % (assoc * line) == 0
            and _power_of_two(size // (assoc * line))):
        raise ValueError(f"{text!r} is out of bounds")
    return size, assoc, line


def cache_level_refusal(text: Any) -> str:
    """Why a cache level cannot be simulated ("" if it can)."""
    try:
        cache_level(text)
    except ValueError:
        return f"must be {CACHE_LEVEL_SHAPE}"
    return ""


CACHE_LEVEL = Rule(check=cache_level_refusal, shape=CACHE_LEVEL_SHAPE)


def is_checkout(root: Path) -> bool:
    """A source checkout (./wb), not an installed package: it has its pyproject.toml."""
    return (root / "pyproject.toml").is_file()


def kernel_checkout_of(where: Path) -> Path | None:
    """The top of the kernel git checkout ``where`` is inside (the nearest ``.git``, with a
    top-level Kconfig and kernel/), found without running git: every command asks."""
    for top in (where, *where.parents):
        if (top / ".git").exists():
            return top if (top / "Kconfig").is_file() and (top / "kernel").is_dir() else None
    return None


def data_root() -> Path:
    """Where the pipeline's own files are (patches/, kconfig/, bench/suites/, userspace/):
    the checkout when run from one, else their copy shipped in the package, so that an
    installed ``wb`` works from any directory. Read at call time: tests patch
    PROJECT_ROOT to give a case a project of its own."""
    if is_checkout(PROJECT_ROOT):
        return PROJECT_ROOT
    from importlib import resources  # only an installed package pays for it

    shipped = resources.files("watchbench").joinpath(DATA)
    if not isinstance(shipped, Path) or not shipped.is_dir():
        raise InputError(f"watchbench is installed without its data ({shipped} is missing "
                         "or inside an archive)",
                         hint="reinstall it from a wheel or a checkout: pipx install "
                              "--force <watchbench>; then check: wb --list")
    return shipped


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
    # auto | kvm | tcg | icount (vm.qemu.Accel, or auto: probe KVM by booting)
    accel: str = ruled("auto", Rule(choices=("auto", *ACCELS)))
    memory_mb: int = ruled(1024, Rule(64))
    cpus: int = ruled(2, AT_LEAST_1)
    boot_timeout: float = ruled(300.0, POSITIVE)  # seconds a boot may take before the guest is killed
    # qemu-plugin.h for the instruction-count plugin; empty: /usr/include, else the header of
    # Debian's qemu source package at the installed QEMU's version (vm.plugin)
    plugin_header: str = ""


@dataclass(frozen=True)
class Judgement:
    """How a change is judged (``stats.decision.decide``), alike for ci, compare, report
    and bisect: the smallest change that counts (a symmetric margin in log space), the
    family-wise alpha, and the smallest between-boot spread believed (icount measured
    0.17 %)."""

    threshold: float = ruled(0.05, Rule(0, 1, open_low=True, open_high=True),
                             option="smallest change that counts, as a fraction")
    alpha: float = ruled(0.01, Rule(0, 0.5, open_low=True),
                         option="family-wise significance level")
    noise_floor: float = ruled(0.001, Rule(0, 1, open_high=True))


@dataclass
class CiSettings:
    """``./wb ci``: paired rounds, ``rounds`` auto: look after ``min_rounds``, then every
    ``round_step``, until every gated metric is decided, up to ``max_rounds`` or
    ``budget_s`` seconds of boots (alpha is spent across the looks); or a fixed number."""

    rounds: str = ruled("auto", Rule(2, words=("auto",)),
                        option="paired rounds per kernel: auto (until decided) or a number")
    min_rounds: int = ruled(4, AT_LEAST_2)
    round_step: int = ruled(2, AT_LEAST_1)
    max_rounds: int = ruled(12, AT_LEAST_2)
    budget_s: float = ruled(1200.0, POSITIVE)
    accel: str = ruled("icount", Rule(choices=ACCELS),  # vm.qemu.Accel; icount: near-deterministic
                       option="icount (near-deterministic) | tcg | kvm")
    # flows.explain.Explain: which metrics to say where they moved
    profile: str = ruled("changed", Rule(choices=("changed", "all", "none")), local=True,
                         option="say where moved metrics' instructions went: changed | all "
                                "| none")
    suite: str = ruled("ci", option="benchmark suite")
    # Boots at once (0: the core count under icount, where figures count instructions and
    # not host time; always 1 under tcg and kvm, whose timings move with host load).
    jobs: int = ruled(0, AT_LEAST_0, local=True,
                      option="boots at once: 0 = the core count under icount; always 1 "
                             "under tcg/kvm")
    # on: every gate boot is profiled with the cache model (icount only) and each profiled
    # case gains a gated metric, est_cycles_per_op, a model, not a measurement
    # (docs/cache-model.md); auto: on under icount, off under tcg and kvm (which time the
    # real caches); off: instructions alone. auto by default: an A/A of 8 boots gave the
    # same estimate on every boot, so it is no noisier than instructions.
    cache_model: str = ruled("auto", Rule(choices=GATE_CACHE_MODELS), example="off",
                             option="auto, on or off: every boot also simulates caches and "
                                    "each profiled case's est_cycles_per_op (a model) is "
                                    "gated too; auto: on under icount, off under tcg/kvm")


@dataclass
class CheckSettings:
    """``./wb check`` (and ``./wb ci --check``): the candidate built with the debug fragments
    and booted once through the API conformance suite, the fault pass, the race stress and
    the real clients (suite.check). Never under icount: the stress needs CPUs that really
    run side by side (plain TCG's MTTCG, or KVM)."""

    # Added to the default fragments (``fragments``): KASAN, lockdep, KFENCE, kmemleak and
    # fault injection (kconfig/debug.config).
    fragments: tuple[str, ...] = ("debug",)
    # auto | kvm | tcg (vm.qemu.Accel; auto: KVM only if it boots)
    accel: str = ruled("auto", Rule(choices=("auto", "kvm", "tcg")))
    stress_seconds: int = ruled(20, AT_LEAST_1)  # how long userspace/wq-stress.c races (wq-stress --seconds)
    # keyutils' own tests (its source package's tests/ directories) run in the guest, each
    # under `keyctl watch_session`, its notifications checked off. Three keep a warm check
    # under 5 min here (README: their times; keyctl/invalidate/valid adds 23-40 s, and its
    # record is checked by keyctl-client; unlink/valid took 247 s and clear/valid 129 s).
    keyutils_tests: tuple[str, ...] = ("keyctl/link/valid", "keyctl/revoke/valid",
                                       "keyctl/update/userupdate")


@dataclass
class BisectSettings:
    rounds: int = ruled(3, AT_LEAST_1)  # boots per commit
    accel: str = ruled("icount", Rule(choices=ACCELS))
    # A commit's boots at once, as ci.jobs: 0 is the core count under icount; always 1
    # under tcg and kvm, whose timings move with host load.
    jobs: int = ruled(0, AT_LEAST_0)
    suite: str = "ci"  # whose runs of the bisected benchmark each boot runs (those only)
    metric: str = "ns_per_op"


@dataclass
class ProfileSettings:
    """Profiled boots (``./wb profile``, ``./wb bench --profile`` and ``ci``'s explanation):
    what the instruction-count plugin simulates besides counting. The cache model's
    figures are a model, not a measurement (docs/cache-model.md)."""

    # on: the plugin simulates I1, D1 and LL caches too (cache=on) and each case gets its
    # misses and est_cycles_per_op, a model; off: the plugin's arguments and file are as
    # they were without the model. In the QEMU argv and each run's provenance.
    cache_model: str = ruled("off", Rule(choices=CACHE_MODELS))
    # The simulated first-level instruction cache. The three defaults are a Skylake-class
    # x86 part (the common CI runner), fixed so that counts are equal from runner to runner.
    l1i: str = ruled("32K:8:64", CACHE_LEVEL)
    l1d: str = ruled("32K:8:64", CACHE_LEVEL)  # the simulated first-level data cache
    # The simulated last-level cache: it sees the I1 and D1 misses.
    ll: str = ruled("8M:16:64", CACHE_LEVEL)


@dataclass
class GcSettings:
    """``wb gc``: what it keeps of each kind. An entry goes only when it is beyond the
    newest N of its kind and older than ``days``; the runs the history names, the kernels
    those kept runs were made on, and whatever a running command holds always stay."""

    runs: int = ruled(100, AT_LEAST_0)  # runs kept (besides the history's)
    kernels: int = ruled(8, AT_LEAST_0)  # built kernels kept (besides the kept runs')
    build_dirs: int = ruled(2, AT_LEAST_0)  # build directories kept per kernel tree (~320 MiB each)
    boots: int = ruled(20, AT_LEAST_0)  # boot directories kept (console logs of recent boots)
    logs: int = ruled(100, AT_LEAST_0)  # build and crash logs kept
    days: float = ruled(14.0, AT_LEAST_0)  # only what is older than this goes (0: any age)


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
    jobs: int = ruled(0, AT_LEAST_0)  # parallel make jobs (0 = number of CPUs)
    ccache: bool = True
    # ccache's remote_storage behind the local cache, shared by a team or CI ("" = none):
    # e.g. "redis://cache.example.org:6379" (kernel.ccache; INVOKE_WATCHBENCH_CCACHE_REMOTE).
    ccache_remote: str = ""
    # A series under test is untrusted (docs/security.md). sandbox: its make and compiles
    # run in bubblewrap and its guest sees only what it needs of the host (false: neither,
    # with a warning on every run; INVOKE_WATCHBENCH_SANDBOX=0). ccache_trusted: builds use
    # and write the remote ccache (false: sandboxed, no network remote, a file:// one
    # read-only; --trusted on a task).
    sandbox: bool = True
    ccache_trusted: bool = False
    # Kconfig fragments merged onto allnoconfig, in order (names under kconfig/).
    fragments: tuple[str, ...] = ("base", "watch_queue", "guest-9p")
    # Our in-kernel benchmark series: `all`, `ci` and the tests apply it under every series
    # measured (and add the kconfig fragment of the same name). "" turns that off.
    bench_series: str = "watch_queue-bench"
    # Extra kernel boot parameters for every boot (kunit's --kernel_args), after the ones
    # watchbench sets; in the QEMU argv and each run's provenance (--kernel-args). Not
    # console, panic, oops, init, rdinit, loglevel, quiet or "--": watchbench sets or
    # relies on those. Runs that differ in them are not compared.
    kernel_args: str = ruled("", Rule(check=kernel_args_refusal, shape=KERNEL_ARGS_SHAPE))
    # Kconfig options set after the fragments, overriding them (kunit's --kconfig_add):
    # in the configuration, so in the kernel's key, and in each run's provenance
    # (--kconfig-add, repeatable). Each must survive olddefconfig, as a fragment's do.
    # Runs that differ in them are not compared.
    kconfig_add: tuple[str, ...] = ruled((), Rule(check=kconfig_add_refusal,
                                                 shape=f"a list of {KCONFIG_ADD_SHAPE}"))
    suite: str = "quick"  # the benchmark suite of `all` and `bench` (bench/suites/<name>.toml)
    qemu: QemuSettings = field(default_factory=QemuSettings)
    decision: Judgement = field(default_factory=Judgement)
    ci: CiSettings = field(default_factory=CiSettings)
    bisect: BisectSettings = field(default_factory=BisectSettings)
    check: CheckSettings = field(default_factory=CheckSettings)
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    gc: GcSettings = field(default_factory=GcSettings)
    # Where the pipeline's files are (``data_root``). Read when a Settings is made, not
    # when this module is: a test gives the project a root of its own (a patches/ it may
    # write) by patching PROJECT_ROOT.
    project_root: Path = field(default_factory=lambda: data_root())

    @property
    def job_count(self) -> int:
        return self.jobs or os.cpu_count() or 1

    @property
    def patches_dir(self) -> Path:
        """Your series (``patches.import`` writes them here): the project's patches/ in a
        checkout, else patches/ in the current directory (an installed ``wb``)."""
        if is_checkout(self.project_root):
            return self.project_root / "patches"
        return Path.cwd() / "patches"

    @property
    def series_dirs(self) -> tuple[Path, ...]:
        """Where a series name is looked up, the first match winning: yours, then the
        ones shipped with watchbench (the bench series)."""
        return tuple(dict.fromkeys([self.patches_dir, self.project_root / "patches"]))

    def outside_checkout(self, cwd: Path) -> Settings:
        """These settings, run from ``cwd``: inside a kernel checkout a relative reports
        dir is taken under the data directory (``reports/<checkout>-<hash>/``, beside the
        runs), since watchbench never writes into your tree."""
        top = kernel_checkout_of(cwd)
        if top is None or self.reports_dir.is_absolute():
            return self
        key = hashlib.sha1(str(top).encode()).hexdigest()[:8]
        where = self.runs_dir.parent / "reports" / f"{top.name}-{key}"
        return replace(self, reports_dir=where if self.reports_dir == Path("reports")
                       else where / self.reports_dir)

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
    def from_mapping(cls, data: dict[str, Any] | None,
                     origins: dict[str, str] | None = None) -> Settings:
        """Build from the ``watchbench`` section of invoke's config (plain dicts). Every
        key must name a setting and every value fit its type and ``Rule``: a typo or a
        wrong value in a config file is an error naming where it came from (``origins``:
        dotted key -> file or variable), not a silent default or a wrong gate."""
        settings = _build(cls, dict(data or {}), "watchbench", exclude={"project_root"},
                          origins=origins or {})
        ci = settings.ci
        if ci.max_rounds < ci.min_rounds:
            key = "watchbench.ci.max_rounds"
            raise InputError(f"setting {key}: {ci.max_rounds}{_from(origins or {}, key)} is "
                             f"below watchbench.ci.min_rounds ({ci.min_rounds})",
                             hint=f"make max_rounds at least min_rounds; "
                                  f"{remedy(origins or {}, key, CiSettings().max_rounds)}")
        return settings


def env_name(key: str) -> str:
    """The environment variable invoke maps to a dotted key (``watchbench.ci.jobs``)."""
    return "INVOKE_" + key.replace(".", "_").upper()


def env_names() -> dict[str, str]:
    """Every settings variable invoke reads (scalars only: invoke's rule) -> its key."""
    out: dict[str, str] = {}

    def walk(mapping: dict[str, Any], prefix: str) -> None:
        for name, value in mapping.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}.{name}")
            elif not isinstance(value, list):
                out[env_name(f"{prefix}.{name}")] = f"{prefix}.{name}"

    walk(Settings().as_mapping(), "watchbench")
    return out


def check_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    """Refuse an ``INVOKE_WATCHBENCH_*`` variable that names no setting: invoke would
    ignore it, and the run would silently use the default the user meant to change."""
    known = env_names()
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX)):
        if name in known:
            continue
        moved = {env_name(k): env_name(v) for k, v in MOVED.items()}
        if name in moved:
            raise InputError(f"environment variable {name} is now {moved[name]}",
                             hint=f"rename it: unset {name}; export {moved[name]}="
                                  f"{environ[name]}; then check: {SHOW}")
        lists = [env_name(f"watchbench.{f}") for f in _list_fields()]
        if name in lists:
            raise InputError(f"environment variable {name}: a list setting cannot be set "
                             "from the environment (invoke's rule)",
                             hint=f"unset {name}; set it in invoke.yaml or ~/.invoke.yaml; "
                                  f"then check: {SHOW}")
        raise InputError(f"environment variable {name}={environ[name]!r} names no setting",
                         hint=f"unset {name}; the known ones: {', '.join(sorted(known))}; "
                              f"then check: {SHOW}")


def check_environment_values(environ: dict[str, str] | os._Environ[str]) -> None:
    """Each known ``INVOKE_WATCHBENCH_*`` value read by its setting's type and rule (invoke
    casts them first and fails with a bare ValueError on one that does not parse)."""
    check_environment(environ)
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, key in env_names().items():
        if name in environ:
            *sections, last = key.split(".")[1:]
            target = data
            for section in sections:
                target = target.setdefault(section, {})
            target[last] = environ[name]
            origins[key] = f"${name}"
    Settings.from_mapping(data, origins)


def _list_fields() -> list[str]:
    out = []
    for section, value in Settings().as_mapping().items():
        if isinstance(value, list):
            out.append(section)
        elif isinstance(value, dict):
            out += [f"{section}.{k}" for k, v in value.items() if isinstance(v, list)]
    return out


def _declared(key: str) -> tuple[Any, str]:
    """The dataclass a dotted setting (``decision.threshold``) is a field of, and its name."""
    cls: Any = Settings
    *sections, name = key.split(".")
    for section in sections:
        cls = get_type_hints(cls)[section]
    return cls, name


def field_of(key: str) -> dataclasses.Field[Any]:
    """The declaration of a dotted setting: its default, rule and option."""
    cls, name = _declared(key)
    return {f.name: f for f in dataclasses.fields(cls)}[name]


def rule_of(key: str) -> Rule:
    """The ``Rule`` of a dotted setting (``decision.threshold``), for the options that
    stand for it."""
    return field_of(key).metadata["rule"]


def type_of(key: str) -> Any:
    """A dotted setting's type (``int`` for ``ci.jobs``)."""
    cls, name = _declared(key)
    return get_type_hints(cls)[name]


CI_SECTIONS = ("ci", "decision")  # the sections whose settings ./wb ci may take as options


def ci_options() -> dict[str, str]:
    """Option name -> dotted key of every setting ``./wb ci`` takes for one run (declared
    with ``ruled(..., option=HELP)``), in declaration order: its task parameter, help,
    parse and the flow's option all come from that one declaration."""
    return {f.name: f"{section}.{f.name}" for section in CI_SECTIONS
            for f in dataclasses.fields(get_type_hints(Settings)[section])
            if f.metadata.get("option")}


def default_of(key: str) -> Any:
    value: Any = Settings()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def remedy(origins: dict[str, str], key: str, default: Any) -> str:
    """What to do about a bad setting where it was set, then the command that shows
    every setting again (a hint ends with a ./wb line to paste)."""
    where = origins.get(key, "")
    shown = str(default) if isinstance(default, Path) else repr(default)
    if where.startswith("$"):
        todo = f"unset {where[1:]} (the default is {shown}) or export a valid value"
    elif where:
        todo = f"edit {where}: fix or remove {key} (the default is {shown})"
    else:
        todo = f"fix {key} (the default is {shown})"
    return f"{todo}; meanings: docs/settings.md; then check: {SHOW}"


def _from(origins: dict[str, str], key: str) -> str:
    return f" (from {origins[key]})" if key in origins else ""


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


def _build(cls: type, data: dict[str, Any], where: str, exclude: set[str] = frozenset(),
           origins: dict[str, str] | None = None) -> Any:
    origins = origins or {}
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    unknown = sorted(set(data) - set(known))
    if unknown:
        key = f"{where}.{unknown[0]}"
        if key in MOVED:
            raise InputError(f"setting {key}{_from(origins, key)} is now {MOVED[key]}",
                             hint=f"rename it in {origins.get(key, 'your invoke.yaml')}; "
                                  f"then check: {SHOW}")
        raise InputError(f"unknown setting {key}{_from(origins, key)}",
                         hint=f"known settings of {where}: {', '.join(known)}; "
                              f"then check: {SHOW}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        kind, key = hints[name], f"{where}.{name}"
        if value is None or (kind in EMPTY_IS_DEFAULT and not value):
            continue  # null (or an empty path or list): the default
        if dataclasses.is_dataclass(kind):
            if not hasattr(value, "items"):
                raise InputError(f"setting {key}{_from(origins, key)}: expected a mapping, "
                                 f"got {value!r}",
                                 hint=f"its keys: docs/settings.md; then check: {SHOW}")
            values[name] = _build(kind, {k: v for k, v in value.items()}, key, origins=origins)
            continue
        try:
            values[name] = _coerce(kind, value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"setting {key}: {value!r} is not a valid {_kind_name(kind)}"
                             f"{_from(origins, key)}",
                             hint=remedy(origins, key, getattr(cls(), name))) from exc
        rule = known[name].metadata.get("rule")
        refused = rule.refusal(_number_or_word(values[name], rule)) if rule else ""
        if refused:
            default = getattr(cls(), name)
            raise InputError(f"setting {key}: {value!r}{_from(origins, key)} {refused}",
                             hint=remedy(origins, key, default))
    return cls(**values)


def _number_or_word(value: Any, rule: Rule) -> Any:
    """A setting that takes words besides numbers (ci.rounds: auto or 6) as the rule sees it."""
    if isinstance(value, str) and rule.words and value not in rule.words:
        text = value.strip()
        return int(text) if text.isdigit() else value
    return value


def _kind_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def _coerce(kind: Any, value: Any) -> Any:
    if kind is Path:
        if not isinstance(value, str | Path):
            raise TypeError(value)
        return Path(os.path.expanduser(str(value)))
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise TypeError(value)
        return bool(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float | str) or (
                isinstance(value, float) and not value.is_integer()):
            raise TypeError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(value)
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(value)
        return number
    if kind is str:
        if isinstance(value, dict | list | tuple):
            raise TypeError(value)
        return "" if value is None else str(value)
    if kind == tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    raise TypeError(f"no coercion for {kind}")


JUDGEMENT = Judgement()  # the defaults statistics fall back to when a caller gives none
