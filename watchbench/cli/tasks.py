"""watchbench's tasks: each one a single call into a command module of watchbench.cli,
which owns printing and exit codes. Defaults live in watchbench/settings.py; invoke.yaml
holds overrides only. In the package (not the checkout's tasks.py, which re-exports it)
so that an installed ``wb`` has the same collection as ``./wb``."""

from __future__ import annotations

import importlib
import shlex
import sys
from types import ModuleType

from invoke import Collection, Task, task

from watchbench.cli import install_excepthook
from watchbench.settings import Settings


class _Lazy(ModuleType):
    """A command module imported when a task first calls it, so `./wb --list`, `--help`
    and every task pay only for the imports that task uses (pandas, scipy, matplotlib
    cost about 2.5 s)."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(f"watchbench.cli.{self.__name__}"), name)


(correctness, gc_, host, kernel, measure, patches, regressions, results, runs_,
 settings_view, vm) = (
    _Lazy(name) for name in ("correctness", "gc", "host", "kernel", "measure", "patches",
                             "regressions", "results", "runs", "settings_view", "vm"))

install_excepthook()  # what escapes invoke itself (its config merge) is an error, not a traceback

ACCEL = "auto | kvm | tcg | icount (default: settings qemu.accel)"
TRUSTED = ("the series is trusted: its builds use and write the remote ccache (default: "
           "settings ccache_trusted, false: no network remote, a file:// one read-only; "
           "docs/security.md)")


KERNEL_ARGS = ("extra kernel boot parameters, after watchbench's own, e.g. \"nokaslr "
               "mitigations=off\" (default: settings kernel_args)")
KCONFIG_ADD = ("a kconfig option set after the fragments, e.g. CONFIG_DEBUG_INFO_DWARF5=y; "
               "repeat it for more (default: settings kconfig_add)")


class _Task(Task):
    """A task whose --kernel-args and --kconfig-add have no short flag: a letter each
    would differ from task to task (and with none left in ci, invoke would pick "-")."""

    def arg_opts(self, name: str, default: object, taken_names: set[str]) -> dict:
        opts = super().arg_opts(name, default, taken_names)
        if name in ("kernel_args", "kconfig_add"):
            opts["names"] = [n for n in opts["names"] if len(n) > 1]
        return opts


def _trust(c, trusted):
    """--trusted: this run's builds may use and write the shared remote ccache."""
    if trusted:
        c.config.watchbench.ccache_trusted = True


@task(help={"check": "only report what is missing; install nothing",
            "tests": "also the packages only the test suite needs (chromium)"})
def deps(c, check=False, tests=False):
    """Check host tools; install missing Debian packages (apt-get, as root or via sudo)."""
    host.deps(c, check, tests)


@task(help={"tree": "path of your own kernel git checkout (worked on in a git worktree)",
            "base": "with --tree: the commit/tag the series applies to, e.g. v6.12",
            "tarball": "a kernel source tarball instead of the Debian default"})
def fetch(c, tree=None, base=None, tarball=None):
    """Get a kernel tree and make it the active one (default: Debian linux-source, pinned)."""
    kernel.fetch(c, tree, base, tarball)


@task
def settings(c):
    """Every setting's value and where it came from (default, invoke.yaml, ~/.invoke.yaml,
    -f FILE or an INVOKE_WATCHBENCH_* variable); meanings in docs/settings.md."""
    settings_view.settings(c)


@task
def status(c):
    """Which tree, base, applied series, configuration and dirty state."""
    kernel.status(c)


@task(name="list")
def list_(c):
    """The series under patches/ with their patches."""
    patches.list_(c)


@task(name="check",
      help={"series": "series name under patches/ (or a path to a series directory)"})
def check_series(c, series):
    """Dry run: does each patch apply to the base? Names the failing patch, file and hunk."""
    patches.check(c, series)


@task(help={"series": "series name under patches/ (or a path to a series directory)"})
def apply(c, series):
    """Apply a series on the base with git am --3way; on failure the tree is left as it was."""
    patches.apply(c, series)


@task(help={"force": "discard uncommitted changes in the work tree too"})
def reset(c, force=False):
    """Back to the bare base: no series."""
    patches.reset(c, force)


@task(name="import",
      help={"name": "name of the new series directory under patches/",
            "tree": "with --range: your git checkout", "range": "git range, e.g. M^1..M^2",
            "mbox": "an mbox file (a saved thread)", "directory": "a directory of .patch files",
            "force": "replace an existing series of that name (once the new one is written)",
            "version": "the version to take from an mbox or directory holding several "
                       "(v1, v2...)"})
def import_(c, name, tree=None, range=None, mbox=None, directory=None, force=False,  # noqa: A002
            version=None):
    """Write patches/<name>/ from a git range, an mbox or a directory of patches."""
    patches.import_(c, name, tree, range, mbox, directory, force, version)


@task(help={"series": "series name under patches/", "strict": "checkpatch --strict"})
def lint(c, series, strict=False):
    """Run the tree's scripts/checkpatch.pl on each patch; counts per patch."""
    patches.lint(c, series, strict)


@task(help={"fragments": "comma-separated fragment names under kconfig/ (default: settings)",
            "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def config(c, fragments=None, kconfig_add=None):
    """allnoconfig + fragments; fails naming each option that did not survive and why."""
    kernel.config(c, fragments, kconfig_add=kconfig_add)


@task(help={"force": "build even if this exact kernel was built before", "trusted": TRUSTED,
            "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def build(c, force=False, trusted=False, kconfig_add=None):
    """Build the active tree's bzImage (content-keyed; ccache; progress; log kept)."""
    _trust(c, trusted)
    kernel.build(c, force, kconfig_add=kconfig_add)


@task
def initramfs(c):
    """Compile the guest programs (static) and pack busybox + init + them as cpio.gz."""
    vm.initramfs(c)


@task(help={"host": "run on the host side, which then sees the host's whole / read-only "
                    "(your explicit choice: bench, ci and check give it only what it needs; "
                    "docs/security.md)",
            "accel": ACCEL, "timeout": "seconds before the guest is killed (default: settings)",
            "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def run(c, host=False, accel=None, timeout=None, kernel_args=None, kconfig_add=None):
    """Boot the built kernel, run the command after --, stream its output, exit with its code."""
    # invoke joins the words after "--" with spaces, losing quotes: take them from sys.argv.
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else shlex.split(c.remainder)
    vm.run(c, argv, host, accel, timeout, kernel_args=kernel_args, kconfig_add=kconfig_add)


@task(help={"accel": ACCEL})
def shell(c, accel=None):
    """Interactive guest console (busybox; host root at /host). Ctrl-A X quits."""
    vm.shell(c, accel)


@task(help={"refresh": "probe again even if a recent verdict is cached"})
def probe(c, refresh=False):
    """Does KVM really work here? Boots a tiny guest under KVM with a 10 s limit."""
    vm.probe(c, refresh)


@task(help={"suite": "suite name under bench/suites/ (quick | full) or a .toml path "
                     "(default: settings suite)",
            "accel": ACCEL, "label": "free text stored with the run (e.g. baseline)",
            "profile": "also count each function's instructions per op (icount, TCG plugin)",
            "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def bench(c, suite=None, accel=None, label="", profile=False, kernel_args=None,
          kconfig_add=None):
    """Boot the built kernel; run conformance, then the suite; store a run with its manifest."""
    measure.bench(c, suite, accel, label, profile, kernel_args=kernel_args,
                  kconfig_add=kconfig_add)


@task(help={"suite": "suite to profile (default: settings ci.suite)",
            "top": "functions shown per case (default 5)",
            "run": "show a stored profiled run instead of booting"})
def profile(c, suite=None, top=None, run=None):
    """Boot once under the instruction-count plugin: each case's top kernel functions."""
    measure.profile(c, suite, top, run)


@task(help={"baseline": "comma-separated run ids (A side of the A/B table)",
            "candidate": "comma-separated run ids (B side)",
            "runs": "comma-separated run ids to include (default: all)",
            "out": "output directory (default: settings reports_dir)",
            "skip_bad": "load the rest when a result file is bad"})
def report(c, baseline=None, candidate=None, runs=None, out=None, skip_bad=False):
    """Self-contained HTML report (+ summary.md, results.csv) of the stored runs."""
    results.report(c, runs, baseline, candidate, out, skip_bad)


@task(positional=["a", "b"],
      help={"a": "baseline run id(s), comma-separated", "b": "candidate run id(s), comma-separated",
            "markdown": "also write the table as Markdown to this file",
            "skip_bad": "load the rest when a result file is bad",
            "all": "list unchanged metrics too"})
def compare(c, a, b, markdown=None, skip_bad=False, all=False):  # noqa: A002
    """A/B table in the terminal: verdict, change, CI and p per benchmark metric."""
    results.compare(c, a, b, markdown, skip_bad, all)


@task(help={"format": "bmf (Bencher: bencher run --adapter json) | github-smaller | github-bigger "
                      "(github-action-benchmark customSmallerIsBetter / customBiggerIsBetter) "
                      "| csv | parquet (the tidy summary table)",
            "runs": "comma-separated run ids to export, or all (default: the newest run and "
                    "the runs comparable with it, as its headline pools them; the JSON "
                    "formats take one kernel's runs)",
            "out": "output file (default: export.<format>.json, export.csv or export.parquet "
                   "under settings reports_dir)",
            "skip_bad": "load the rest when a result file is bad"})
def export(c, format=None, runs=None, out=None, skip_bad=False):  # noqa: A002
    """The stored runs' figures (per series, boots as the unit) for Bencher, CI charts, pandas."""
    results.export(c, format, runs, out, skip_bad)


@task(help={"limit": "how many runs to list, newest first (default 20; 0: all)"})
def runs(c, limit=None):
    """The stored runs, newest first: id, time, accelerator, suite, label, kernel.

    Their ids are what compare, report and export take."""
    runs_.runs(c, limit)


@task(help={"delete": "remove what it lists (without it: a dry run that only says what "
                      "would go and how much that frees)",
            "keep_runs": "newest runs kept, besides those the history names (default: "
                         "settings gc.runs)",
            "keep_kernels": "newest built kernels kept, besides those the kept runs were "
                            "made on (default: settings gc.kernels)",
            "keep_builds": "build directories kept per kernel tree, besides its current "
                           "configuration's (default: settings gc.build_dirs)",
            "keep_boots": "newest boot directories kept (default: settings gc.boots)",
            "older_than": "days: only what is older goes (default: settings gc.days)"},
      auto_shortflags=False)  # four --keep-* options: invoke would make "-" a short flag
def gc(c, delete=False, keep_runs=None, keep_kernels=None, keep_builds=None, keep_boots=None,
       older_than=None):
    """Prune runs, kernels, build dirs, boots, logs by count and age (dry run unless --delete).

    Keeps what the history, the newest runs and running commands need."""
    gc_.gc(c, delete=delete, keep_runs=keep_runs, keep_kernels=keep_kernels,
           keep_builds=keep_builds, keep_boots=keep_boots, older_than=older_than)


@task(help={"series": "series to gate, comma-separated (empty: an A/A run of the baseline)",
            "rounds": "paired rounds per kernel: auto (until decided) or a number "
                      "(default: settings ci.rounds, 0 = auto)",
            "accel": "icount (near-deterministic) | tcg | kvm (default: settings ci.accel)",
            "suite": "benchmark suite (default: settings ci.suite)",
            "per_patch": "also measure after each patch",
            "profile": "say where moved metrics' instructions went: changed | all | none "
                       "(default: settings ci.profile)",
            "threshold": "smallest change that counts, as a fraction (default: settings)",
            "alpha": "family-wise significance level (default: settings)",
            "accept_undecided": "exit 0 instead of 3 when a gated metric stays undecided",
            "record": "append to the history",
            "out": "report directory (default: settings reports_dir)",
            "tree": "your kernel checkout", "base": "with --tree: base ref",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "jobs": "boots at once (default: settings ci.jobs, 0 = the core count under "
                    "icount; always 1 under tcg/kvm)",
            "shard": "I/N: boot only this shard's rounds into OUT/shard-I-of-N (no verdict)",
            "merge": "shard directories (or a directory holding them), comma-separated or "
                     "repeated: the verdict of the merged shards",
            "check": "first run `./wb check` on the candidate: a finding is exit 4 (its "
                     "infrastructure failing, 2), and nothing is measured",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD},
      iterable=["merge", "kconfig_add"], klass=_Task)
def ci(c, series="", rounds=None, accel=None, suite=None, per_patch=False, threshold=None,
       alpha=None, accept_undecided=False, record=False, out=None, tree=None, base=None,
       no_wait=False, jobs=None, shard=None, merge=None, profile=None, check=False,
       trusted=False, kernel_args=None, kconfig_add=None):
    """Gate a series: exit 0 ok, 1 slower or broken, 2 infra, 3 undecided, 4 incorrect."""
    _trust(c, trusted)
    regressions.ci(c, series=series, rounds=rounds, accel=accel, suite=suite,
                   per_patch=per_patch, threshold=threshold, alpha=alpha,
                   accept_undecided=accept_undecided, record=record, out=out, tree=tree,
                   base=base, no_wait=no_wait, jobs=jobs,
                   shard=shard, merge=merge, profile=profile, check=check,
                   kernel_args=kernel_args, kconfig_add=kconfig_add)


@task(name="check",
      help={"series": "series to check, comma-separated, on top of the bench series "
                      "(empty: the base with the bench series)",
            "stress_seconds": "how long the race stress runs (default: settings "
                              "check.stress_seconds)",
            "accel": "auto | tcg | kvm, never icount (default: settings check.accel)",
            "only": "comma-separated steps: kmemleak, conformance, faults, stress, "
                    "keyctl-client, watch-test, keyutils-tests (default: all)",
            "out": "report directory; files go to OUT/check/ (default: settings reports_dir)",
            "tree": "your kernel checkout", "base": "with --tree: base ref",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def correctness_check(c, series="", stress_seconds=None, accel=None, only=None, out=None,
                      tree=None, base=None, no_wait=False, trusted=False, kernel_args=None,
                      kconfig_add=None):
    """Correctness on a debug kernel (KASAN, lockdep, kmemleak): exit 0 pass, 4 fail, 2 infra."""
    _trust(c, trusted)
    correctness.check(c, series=series, stress_seconds=stress_seconds, accel=accel, only=only,
                      out=out, tree=tree, base=base, no_wait=no_wait,
                      kernel_args=kernel_args, kconfig_add=kconfig_add)


@task(help={"good": "a commit where the benchmark was fine", "bad": "a commit where it is slow",
            "benchmark": "benchmark name, e.g. keyctl-post",
            "metric": "metric (default: settings bisect.metric)",
            "params": "the parameter set, as `./wb compare` prints it, when there are several",
            "rounds": "boots per commit (0: settings bisect.rounds, 3)",
            "accel": "icount | tcg | kvm (default: settings bisect.accel)",
            "suite": "benchmark suite (default: settings bisect.suite)",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "trusted": TRUSTED})
def bisect(c, good, bad, benchmark, metric=None, params="", rounds=None, accel=None, suite=None,
           no_wait=False, trusted=False):
    """Find the commit (in the active tree, e.g. from `kernel.fetch --tree`) that slowed a benchmark."""
    _trust(c, trusted)
    regressions.bisect(c, good, bad, benchmark, metric, params, rounds, accel, suite, no_wait)


@task(help={"k": "pytest -k expression",
            "fast": "only the fast tier (no kernel; about a minute, spread over the cores)",
            "args": "extra pytest arguments, for each tier",
            "keep_going": "run the kernel tier even when the fast tier failed"})
def test(c, k=None, fast=False, args="", keep_going=False):
    """The test suite: the fast tier, then the kernel tier (builds and boots the real
    kernel; installs host tools first). CI runs exactly `./wb test`."""
    host.test(c, k, fast, args, keep_going)


@task(help={"series": "your series to measure, on top of the bench series (comma-separated)",
            "fragments": "comma-separated kconfig fragments (default: settings)",
            "suite": "benchmark suite (default: settings suite)",
            "accel": ACCEL, "tree": "your kernel checkout (with --base)",
            "base": "with --tree: the base ref", "tarball": "a kernel tarball",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def all_(c, series=None, fragments=None, suite=None, accel=None, tree=None, base=None, tarball=None,
         trusted=False, kernel_args=None, kconfig_add=None):
    """The whole pipeline: deps, fetch, patch, config, build, boot, bench, report."""
    _trust(c, trusted)
    measure.all_(c, series, fragments, suite, accel, tree, base, tarball,
                 kernel_args=kernel_args, kconfig_add=kconfig_add)


kernel_ns = Collection("kernel", fetch, status)
patches_ns = Collection("patches", list_, check_series, apply, reset, import_, lint)
vm_ns = Collection("vm", run, shell, probe)
ns = Collection(deps, settings, config, build, initramfs, bench, profile, report, compare, export,
                runs, gc, ci, bisect, test, correctness_check, kernel_ns, patches_ns, vm_ns)
ns.add_task(all_, name="all")
# The defaults, from the one place they are written; invoke.yaml and the user's config
# override them by the same names (and INVOKE_WATCHBENCH_* variables, since the keys exist).
ns.configure({"watchbench": Settings().as_mapping()})
