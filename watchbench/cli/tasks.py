"""watchbench's tasks: each one a single call into a command module of watchbench.cli,
which owns printing and exit codes. Defaults live in watchbench/settings.py; invoke.yaml
holds overrides only. In the package (not the checkout's tasks.py, which re-exports it)
so that an installed ``wb`` has the same collection as ``./wb``.

Each task's docstring is its manual page: a first line of at most 60 columns (`./wb
--list` shows it), what the task does, then the sections "Exit status:", "Files:" and
"Example:", every line within 78 columns. `./wb --help TASK` prints the options between
the two (cli/program.py); tests/unit/test_task_help.py checks every task against this."""

from __future__ import annotations

import importlib
import shlex
import sys
from inspect import Parameter, Signature
from types import ModuleType

from invoke import Collection, Task, task

from watchbench.cli import check_help, install_excepthook
from watchbench.settings import Settings, ci_options, field_of


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


CACHE_MODEL = ("the profile's plugin also simulates I1, D1 and LL caches: misses and "
               "est_cycles_per_op per case, a model, not a measurement (default: settings "
               "profile.cache_model; the caches: profile.l1i, l1d, ll)")
KERNEL_ARGS = ("extra kernel boot parameters, after watchbench's own, e.g. \"nokaslr "
               "mitigations=off\" (default: settings kernel_args)")
KCONFIG_ADD = ("a kconfig option set after the fragments, e.g. CONFIG_DEBUG_INFO_DWARF5=y; "
               "repeat it for more (default: settings kconfig_add)")
UNCOMMITTED = ("inside your kernel checkout: measure its uncommitted changes too, as one "
               "last patch (without it they are refused)")


class _Task(Task):
    """A task whose --kernel-args and --kconfig-add have no short flag: a letter each
    would differ from task to task (and with none left in ci, invoke would pick "-")."""

    def arg_opts(self, name: str, default: object, taken_names: set[str]) -> dict:
        opts = super().arg_opts(name, default, taken_names)
        if name in ("kernel_args", "kconfig_add"):
            opts["names"] = [n for n in opts["names"] if len(n) > 1]
        # With every letter taken (ci's --cache-model), invoke's next pick is "-": none.
        opts["names"] = [n for n in opts["names"] if len(n) > 1 or n.isalnum()]
        return opts


def _trust(c, trusted):
    """--trusted: this run's builds may use and write the shared remote ccache."""
    if trusted:
        c.config.watchbench.ccache_trusted = True


@task(help={"check": "only report what is missing; install nothing",
            "tests": "also the packages only the test suite needs (chromium)"})
def deps(c, check=False, tests=False):
    """Check the host tools; install the missing Debian packages.

    Installs with apt-get, as root or through sudo, what the pipeline needs
    (QEMU, busybox, cpio, flex, bison, libelf, ccache, keyutils...); with
    --tests also what only the test suite needs. --check installs nothing and
    only says what is missing.

    Exit status:
      0    every tool is present (or was installed)
      2    a package is missing (--check), or apt-get failed
      130  interrupted (Ctrl-C)

    Files:
      reads   the tools on $PATH
      writes  nothing of watchbench's; apt-get installs system packages

    Example:
      ./wb deps --check
    """
    host.deps(c, check, tests)


@task(help={"tree": "path of your own kernel git checkout (worked on in a git worktree)",
            "base": "with --tree: the commit/tag the series applies to, e.g. v6.12",
            "tarball": "a kernel source tarball instead of the Debian default"})
def fetch(c, tree=None, base=None, tarball=None):
    """Get a kernel tree and make it the active one.

    Default: the pinned Debian linux-source package, unpacked and committed as
    the base. --tree takes your own git checkout, worked on in a git worktree
    at --base (your checkout is never touched); --tarball unpacks a source
    tarball. config, build, bench and the patches.* tasks use the active tree.

    Exit status:
      0    the tree is ready and active
      2    bad input (no such checkout or commit), a download or git failure
      130  interrupted (Ctrl-C)

    Files:
      reads   --tree's repository, --tarball
      writes  ~/.cache/watchbench/trees/ID/ (src/, tree.json), downloads/,
              active-tree (settings cache_dir)

    Example:
      ./wb kernel.fetch --tree ~/linux --base v6.12
    """
    kernel.fetch(c, tree, base, tarball)


@task
def settings(c):
    """Every setting's value and where it came from.

    The sources, later ones winning (invoke's order): the default
    (watchbench/settings.py), ~/.invoke.yaml, the checkout's invoke.yaml,
    INVOKE_WATCHBENCH_* variables, -f FILE. Meanings: docs/settings.md.

    Exit status:
      0    printed
      2    a key names no setting, or a value is out of its range (named)

    Files:
      reads   invoke.yaml, ~/.invoke.yaml, -f FILE, the environment
      writes  nothing

    Example:
      INVOKE_WATCHBENCH_JOBS=4 ./wb settings
    """
    settings_view.settings(c)


@task
def status(c):
    """The active tree: base, series, configuration, dirty state.

    Inside your kernel checkout: the checkout first (branch, HEAD, its
    uncommitted files), then the worktree watchbench builds it in.

    Which tree is active, its base, the applied series, the configuration and
    whether the work tree is dirty; also a command interrupted on the tree
    (the next command that takes the tree puts it back).

    Exit status:
      0    printed
      2    no active tree yet (./wb kernel.fetch makes one)

    Files:
      reads   ~/.cache/watchbench/active-tree, the tree's tree.json and git state
      writes  nothing

    Example:
      ./wb kernel.status
    """
    kernel.status(c)


@task(name="list")
def list_(c):
    """The series under patches/ with their patches.

    Each series: its name, number of patches and content hash, then each
    patch's subject. A series that does not parse says why.

    Exit status:
      0    printed
      2    a bad setting (named)

    Files:
      reads   patches/*/ (each series' patches.list and .patch files)
      writes  nothing

    Example:
      ./wb patches.list
    """
    patches.list_(c)


@task(name="check",
      help={"series": "series name under patches/ (or a path to a series directory)"})
def check_series(c, series):
    """Dry run: does each patch of a series apply to the base?

    Names the patch, file and hunk that fail. Nothing is changed.

    Exit status:
      0    every patch applies
      1    a patch does not apply (named)
      2    bad input (no such series), a git failure

    Files:
      reads   patches/SERIES/, the active tree
      writes  nothing

    Example:
      ./wb patches.check my-fix
    """
    patches.check(c, series)


@task(help={"series": "series name under patches/ (or a path to a series directory)"})
def apply(c, series):
    """Apply a series on the base with git am --3way.

    All or nothing: the series is checked first, and on a failure the tree is
    left as it was, the failing patch named. It replaces the series applied
    before; a tree with uncommitted changes is refused.

    Exit status:
      0    applied
      2    a patch does not apply, uncommitted changes, no such series
      130  interrupted (Ctrl-C); the next command puts the tree back

    Files:
      reads   patches/SERIES/
      writes  the active tree (git state, tree.json)

    Example:
      ./wb patches.apply my-fix
    """
    patches.apply(c, series)


@task(help={"force": "discard uncommitted changes in the work tree too"})
def reset(c, force=False):
    """Back to the bare base: no series.

    A tree with uncommitted changes is refused unless --force, which discards
    them.

    Exit status:
      0    the tree is at its base
      2    uncommitted changes (without --force), a git failure

    Files:
      reads   the active tree
      writes  the active tree (git state, tree.json)

    Example:
      ./wb patches.reset --force
    """
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
    """Write patches/NAME/ from a git range, mbox or directory.

    One source: --range in --tree's checkout, --mbox (a saved thread) or
    --directory. From a thread holding several versions of a series, --version
    picks one. Every option is checked before anything is read or written.

    Exit status:
      0    the series is written
      2    bad input (two sources, no such file, NAME exists without --force)

    Files:
      reads   --tree's repository, --mbox, --directory
      writes  patches/NAME/ (patches.list and the .patch files)

    Example:
      ./wb patches.import --name my-fix --mbox thread.mbox --version 2
    """
    patches.import_(c, name, tree, range, mbox, directory, force, version)


@task(help={"series": "series name under patches/", "strict": "checkpatch --strict"})
def lint(c, series, strict=False):
    """checkpatch.pl on each patch of a series.

    Runs the active tree's scripts/checkpatch.pl (--strict: its strict mode) and
    prints the errors, warnings and checks of each patch.

    Exit status:
      0    no patch has an error (warnings allowed)
      1    a patch has an error
      2    bad input (no such series), checkpatch could not run

    Files:
      reads   patches/SERIES/, the active tree's scripts/checkpatch.pl
      writes  nothing

    Example:
      ./wb patches.lint my-fix --strict
    """
    patches.lint(c, series, strict)


@task(help={"fragments": "comma-separated fragment names under kconfig/ (default: settings)",
            "kconfig_add": KCONFIG_ADD},
      iterable=["kconfig_add"], klass=_Task)
def config(c, fragments=None, kconfig_add=None):
    """allnoconfig + fragments, checked option by option.

    Fails naming each requested option that did not survive and why (the
    dependency that is off). Configurations are cached by their inputs.

    Exit status:
      0    every requested option survived
      2    an option was dropped (named), bad input, make failed
      130  interrupted (Ctrl-C); the old configuration stands

    Files:
      reads   kconfig/*.config, the active tree
      writes  the tree's configs/HASH.config and tree.json,
              ~/.cache/watchbench/kconfig/

    Example:
      ./wb config --fragments base,watch_queue
    """
    kernel.config(c, fragments, kconfig_add=kconfig_add)


@task(help={"force": "build even if this exact kernel was built before", "trusted": TRUSTED,
            "kconfig_add": KCONFIG_ADD, "uncommitted": UNCOMMITTED},
      iterable=["kconfig_add"], klass=_Task)
def build(c, force=False, trusted=False, kconfig_add=None, uncommitted=False):
    """Build the active tree's bzImage, or your checkout's HEAD.

    Inside your kernel checkout: HEAD with our bench series, in a worktree
    of it (your checkout is only read), as bench and profile build it.

    The kernel is keyed by its content (commit, series, configuration,
    compiler): one built before is reused unless --force. ccache speeds a
    rebuild; progress is shown and the build log kept.

    Exit status:
      0    built (or already built)
      2    make failed (the first errors and the log named), not configured
      130  interrupted (Ctrl-C); a half-written build is cleared next time

    Files:
      reads   the active tree (or your checkout) and its configuration
      writes  ~/.cache/watchbench/kernels/KEY/ (bzImage, config, build.log),
              logs/build-*.log, ccache/, the tree's build/ directory

    Example:
      ./wb build --force
    """
    _trust(c, trusted)
    kernel.build(c, force, kconfig_add=kconfig_add, uncommitted=uncommitted)


@task
def initramfs(c):
    """Compile the guest programs and pack the base initramfs.

    Busybox, the init script and the static guest programs of userspace/ as a
    cpio.gz, cached by its inputs. bench and vm.run make it when they need it.

    Exit status:
      0    built (or already built); its path is printed
      2    a program does not compile, a tool is missing

    Files:
      reads   userspace/, watchbench/guest/
      writes  ~/.cache/watchbench/initramfs/ and userspace/ (the programs)

    Example:
      ./wb initramfs
    """
    vm.initramfs(c)


@task(help={"host": "run on the host side, which then sees the host's whole / read-only "
                    "(your explicit choice: bench, ci and check give it only what it needs; "
                    "docs/security.md)",
            "accel": ACCEL, "timeout": "seconds before the guest is killed (default: settings)",
            "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD,
            "uncommitted": UNCOMMITTED},
      iterable=["kconfig_add"], klass=_Task)
def run(c, host=False, accel=None, timeout=None, kernel_args=None, kconfig_add=None,
        uncommitted=False):
    """Boot the built kernel and run the command after --.

    Inside your kernel checkout, the kernel is HEAD's (built first if
    needed, as ./wb build builds it).

    Streams its output and exits with its code. The command runs in the
    busybox guest, or with --host on the host side of the guest, which then
    sees the host's whole / read-only (docs/security.md).

    Exit status:
      N    the command's own exit code
      2    the guest ended before the command reported one; bad input
      130  interrupted (Ctrl-C); the guest is stopped

    Files:
      reads   the active tree's (or your checkout's) kernel, the base initramfs
      writes  ~/.cache/watchbench/boots/ (the console log, named at the end)

    Example:
      ./wb vm.run -- cat /proc/version
    """
    # invoke joins the words after "--" with spaces, losing quotes: take them from sys.argv.
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else shlex.split(c.remainder)
    vm.run(c, argv, host, accel, timeout, kernel_args=kernel_args, kconfig_add=kconfig_add,
           uncommitted=uncommitted)


@task(help={"accel": ACCEL})
def shell(c, accel=None):
    """Interactive guest console; Ctrl-A X quits.

    Busybox, with the host's root at /host.

    Exit status:
      N    QEMU's exit code once the console is quit (0 normally)
      2    no built kernel, bad input

    Files:
      reads   the active tree's built kernel, the base initramfs
      writes  ~/.cache/watchbench/boots/

    Example:
      ./wb vm.shell --accel tcg
    """
    vm.shell(c, accel)


@task(help={"refresh": "probe again even if a recent verdict is cached"})
def probe(c, refresh=False):
    """Does KVM really work here?

    Boots a tiny guest under KVM with a 10 s limit. The verdict is cached for a
    day; --refresh probes again.

    Exit status:
      0    printed: works or unusable, and why

    Files:
      reads   /dev/kvm
      writes  ~/.cache/watchbench/accel-kvm.json, probe/

    Example:
      ./wb vm.probe --refresh
    """
    vm.probe(c, refresh)


@task(help={"suite": "suite name under bench/suites/ (quick | full) or a .toml path "
                     "(default: settings suite)",
            "accel": ACCEL, "label": "free text stored with the run (e.g. baseline)",
            "profile": "also count each function's instructions per op (icount, TCG plugin)",
            "cache_model": "with --profile: " + CACHE_MODEL,
            "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD,
            "uncommitted": UNCOMMITTED},
      iterable=["kconfig_add"], klass=_Task)
def bench(c, suite=None, accel=None, label="", profile=False, cache_model=False,
          kernel_args=None, kconfig_add=None, uncommitted=False):
    """Boot the built kernel and run the suite; store the run.

    Inside a kernel checkout: its HEAD with the bench series, built in a
    worktree. The API conformance tests run first; then the suite's
    benchmarks. The run is stored with its manifest (kernel, QEMU, host,
    suite); its headline figures and where they are end the output.

    Exit status:
      0    the run is stored
      2    conformance failed, the guest did not boot, bad input
      130  interrupted (Ctrl-C); the half run is not taken as a result

    Files:
      reads   bench/suites/SUITE.toml, the built kernel, the base initramfs
      writes  ~/.local/share/watchbench/runs/ID/ (settings runs_dir),
              ~/.cache/watchbench/boots/

    Example:
      ./wb bench --suite quick --label baseline
    """
    measure.bench(c, suite, accel, label, profile, kernel_args=kernel_args,
                  kconfig_add=kconfig_add, uncommitted=uncommitted, cache_model=cache_model)


@task(help={"suite": "suite to profile (default: settings ci.suite)",
            "top": "functions shown per case (default 5)",
            "run": "show a stored profiled run instead of booting",
            "cache_model": CACHE_MODEL, "uncommitted": UNCOMMITTED})
def profile(c, suite=None, top=None, run=None, cache_model=False, uncommitted=False):
    """Each case's top kernel functions, in instructions per op.

    Boots once under icount with the TCG instruction-count plugin, or shows a
    stored profiled run (--run). --cache-model adds the simulated caches'
    misses and est_cycles_per_op beside the instructions: a model.

    Exit status:
      0    printed
      2    the plugin does not build, the guest did not boot, no such run

    Files:
      reads   bench/suites/SUITE.toml, the built kernel; with --run the run
      writes  a run with profile.parquet under ~/.local/share/watchbench/runs/,
              ~/.cache/watchbench/plugins/

    Example:
      ./wb profile --top 10
    """
    measure.profile(c, suite, top, run, uncommitted=uncommitted, cache_model=cache_model)


@task(help={"baseline": "comma-separated run ids (A side of the A/B table)",
            "candidate": "comma-separated run ids (B side)",
            "runs": "comma-separated run ids to include (default: all)",
            "out": "output directory (default: settings reports_dir)",
            "skip_bad": "load the rest when a result file is bad"})
def report(c, baseline=None, candidate=None, runs=None, out=None, skip_bad=False):
    """Self-contained HTML report of the stored runs.

    With --baseline and --candidate it leads with their A/B comparison. Beside
    index.html: summary.md (Markdown) and results.csv (every case).

    Exit status:
      0    written; the page's path is printed
      2    no runs, runs that cannot be compared, a bad result file

    Files:
      reads   ~/.local/share/watchbench/runs/ (settings runs_dir)
      writes  OUT/index.html, OUT/summary.md, OUT/results.csv (OUT: reports/)

    Example:
      ./wb report --baseline RUN_A --candidate RUN_B
    """
    results.report(c, runs, baseline, candidate, out, skip_bad)


@task(positional=["a", "b"],
      help={"a": "baseline run id(s), comma-separated", "b": "candidate run id(s), comma-separated",
            "markdown": "also write the table as Markdown to this file",
            "skip_bad": "load the rest when a result file is bad",
            "all": "list unchanged metrics too"})
def compare(c, a, b, markdown=None, skip_bad=False, all=False):  # noqa: A002
    """A/B table in the terminal: verdict, change, CI and p.

    A and B are run ids, comma-separated; ./wb runs lists them. Unchanged
    metrics are counted, not listed (--all lists them).

    Exit status:
      0    printed (whatever the verdicts: ./wb ci gates)
      2    no such run, runs that cannot be compared

    Files:
      reads   ~/.local/share/watchbench/runs/ (settings runs_dir)
      writes  --markdown FILE

    Example:
      ./wb compare RUN_A RUN_B --markdown ab.md
    """
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
    """The stored runs' figures for Bencher, CI charts or pandas.

    One figure per series, boots as the unit. By default the newest run and
    the runs comparable with it; --runs all takes every stored run.

    Exit status:
      0    written; the file's path is printed
      2    no --format, no runs, a bad result file

    Files:
      reads   ~/.local/share/watchbench/runs/ (settings runs_dir)
      writes  OUT (default: reports/export.FORMAT.json, .csv or .parquet)

    Example:
      ./wb export --format bmf --out bmf.json
    """
    results.export(c, format, runs, out, skip_bad)


@task(help={"limit": "how many runs to list, newest first (default 20; 0: all)"})
def runs(c, limit=None):
    """The stored runs, newest first.

    Each with its id, time, accelerator, suite, label and kernel: the ids are
    what compare, report and export take.

    Exit status:
      0    printed

    Files:
      reads   ~/.local/share/watchbench/runs/ (settings runs_dir)
      writes  nothing

    Example:
      ./wb runs --limit 5
    """
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
    """Prune old runs, kernels, build dirs, boots and logs.

    By count and age; a dry run unless --delete, which says what would go and
    how much that frees. Kept: what the history names, the newest of each
    kind, what a kept run was made on and what running commands hold.

    Exit status:
      0    listed (or deleted)
      2    bad input

    Files:
      reads   ~/.local/share/watchbench/runs/ and its history.jsonl
      writes  with --delete, removes from there and ~/.cache/watchbench/

    Example:
      ./wb gc --delete --older-than 30
    """
    gc_.gc(c, delete=delete, keep_runs=keep_runs, keep_kernels=keep_kernels,
           keep_builds=keep_builds, keep_boots=keep_boots, older_than=older_than)


# ci's options in the order invoke gives out short flags (-s --series, -r --rounds, -a
# --accel...), each with its default; None for one that stands for a setting (not given:
# the setting's value). A setting declared later with ruled(..., option=HELP) needs no
# line here: it comes last (settings.ci_options), so the short flags above stay as they are.
CI_PARAMETERS = {"series": "", "rounds": None, "accel": None, "suite": None, "per_patch": False,
                 "threshold": None, "alpha": None, "accept_undecided": False, "record": False,
                 "out": None, "tree": None, "base": None, "no_wait": False, "jobs": None,
                 "shard": None, "merge": None, "profile": None, "check": False,
                 "trusted": False, "kernel_args": None, "kconfig_add": None,
                 "uncommitted": False, "cache_model": None}


def _ci_parameters(body):
    """``body(c, **given)`` with ci's parameters as invoke reads them (inspect.signature
    honours ``__signature__``): CI_PARAMETERS, then every setting ci takes not among them."""
    names = {**CI_PARAMETERS, **{name: None for name in ci_options()}}
    body.__signature__ = Signature([Parameter(name, Parameter.POSITIONAL_OR_KEYWORD,
                                              **({} if name == "c" else {"default": default}))
                                    for name, default in {"c": None, **names}.items()])
    return body


@task(help={"series": "series to gate, comma-separated (empty: an A/A run of the baseline)",
            "per_patch": "also measure after each patch",
            "accept_undecided": "exit 0 instead of 3 when a gated metric stays undecided",
            "record": "append to the history",
            "out": "report directory (default: settings reports_dir)",
            "tree": "a kernel checkout elsewhere (with --base and --series)",
            "base": "inside your kernel checkout: gate the commits BASE..HEAD; with --tree "
                    "or --series: the commit the series applies to",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "uncommitted": UNCOMMITTED,
            "shard": "I/N: boot only this shard's rounds into OUT/shard-I-of-N (no verdict)",
            "merge": "shard directories (or a directory holding them), comma-separated or "
                     "repeated: the verdict of the merged shards",
            "check": "first run `./wb check` on the candidate: a finding is exit 4 (its "
                     "infrastructure failing, 2), and nothing is measured",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD,
            # an option that stands for a setting: the setting's help and key
            **{name: f"{field_of(key).metadata['option']} (default: settings {key})"
               for name, key in ci_options().items()}},
      iterable=["merge", "kconfig_add"], klass=_Task)
@_ci_parameters
def ci(c, **given):
    """Gate a series or your branch: is the kernel slower with it?

    Builds the baseline (base + bench series) and the candidate (+ SERIES;
    inside your kernel checkout, --base REF: + your commits REF..HEAD),
    boots them in paired rounds, ABBA, until every gated metric is decided,
    and decides each against --threshold at family-wise --alpha
    (docs/gate.md). Shards (--shard, --merge) spread the rounds over machines.

    Exit status:
      0    every gated metric unchanged or improved
      1    a gated metric regressed, or a benchmark broke on the candidate
      2    infrastructure: patch, config, build, boot, conformance; bad input
      3    a gated metric still undecided (0 with --accept-undecided)
      4    --check: the candidate failed ./wb check; nothing was measured
      130  interrupted (Ctrl-C); the tree is put back as it was

    Files:
      reads   patches/SERIES/, bench/suites/ci.toml, the kernel tree
      writes  OUT/index.html, summary.md, junit.xml, results.csv (OUT:
              reports/); a run per boot in ~/.local/share/watchbench/runs/

    Example:
      ./wb ci --base v6.12 --per-patch    # in your kernel checkout
      ./wb ci --series my-fix --per-patch
    """
    _trust(c, given.pop("trusted"))
    regressions.ci(c, **given)


@task(name="check",
      help={"series": "series to check, comma-separated, on top of the bench series "
                      "(empty: the base with the bench series)",
            "stress_seconds": "how long the race stress runs (default: settings "
                              "check.stress_seconds)",
            "accel": "auto | tcg | kvm, never icount (default: settings check.accel)",
            "only": check_help.ONLY,
            "out": "report directory; files go to OUT/check/ (default: settings reports_dir)",
            "tree": "a kernel checkout elsewhere (default: the one you stand in, at HEAD)",
            "base": "with --tree: base ref",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD,
            "uncommitted": UNCOMMITTED},
      iterable=["kconfig_add"], klass=_Task)
@check_help.with_steps
def correctness_check(c, series="", stress_seconds=None, accel=None, only=None, out=None,
                      tree=None, base=None, no_wait=False, trusted=False, kernel_args=None,
                      kconfig_add=None, uncommitted=False):
    """Correctness on a debug kernel (KASAN, lockdep, kmemleak).

    Builds the series (inside a kernel checkout: on its HEAD) on a debug
    configuration and boots it once through these steps, in this order
    (--only picks some); a finding comes with all its evidence
    (docs/check.md):
      {steps}

    Exit status:
      0    every step passed
      2    infrastructure: patch, config, build, boot; bad input
      4    a step failed (a finding)

    Files:
      reads   patches/SERIES/, kconfig/debug.config, the kernel tree
      writes  OUT/check/ (check.ktap, junit.xml, summary.md, check.json;
              OUT: reports/), ~/.cache/watchbench/boots/

    Example:
      ./wb check --series my-fix --only conformance,stress
    """
    _trust(c, trusted)
    correctness.check(c, series=series, stress_seconds=stress_seconds, accel=accel, only=only,
                      out=out, tree=tree, base=base, no_wait=no_wait,
                      kernel_args=kernel_args, kconfig_add=kconfig_add, uncommitted=uncommitted)


@task(help={"good": "a commit where the benchmark was fine", "bad": "a commit where it is slow",
            "benchmark": "benchmark name, e.g. keyctl-post",
            "metric": "metric (default: settings bisect.metric)",
            "params": "the parameter set, as `./wb compare` prints it, when there are several",
            "rounds": "boots per commit (0: settings bisect.rounds, 3)",
            "accel": "icount | tcg | kvm (default: settings bisect.accel)",
            "suite": "benchmark suite (default: settings bisect.suite)",
            "no_wait": "fail at once (exit 2) if another command is changing the kernel tree",
            "jobs": "a commit's boots at once: 0 = the core count under icount; always 1 "
                    "under tcg/kvm (default: settings bisect.jobs)",
            "trusted": TRUSTED})
def bisect(c, good, bad, benchmark, metric=None, params="", rounds=None, accel=None, suite=None,
           no_wait=False, jobs=None, trusted=False):
    """Find the commit that slowed a benchmark.

    Between GOOD and BAD in the kernel checkout you stand in (in a worktree
    of it), else in the active tree (e.g. from kernel.fetch --tree); each
    step built with the bench series and booted --rounds times, then
    decided against the good and the bad end like the gate.

    Exit status:
      0    the first bad commit is printed
      2    the ends do not differ, a build or boot failed, bad input
      130  interrupted (Ctrl-C)

    Files:
      reads   the active tree, bench/suites/SUITE.toml
      writes  ~/.cache/watchbench/kernels/, a run per boot in
              ~/.local/share/watchbench/runs/

    Example:
      ./wb bisect v6.12 HEAD kernel-post    # in your kernel checkout
    """
    _trust(c, trusted)
    regressions.bisect(c, good, bad, benchmark, metric, params, rounds, accel, suite, no_wait,
                       jobs)


@task(help={"k": "pytest -k expression",
            "fast": "only the fast tier (no kernel; about a minute, spread over the cores)",
            "args": "extra pytest arguments, for each tier",
            "keep_going": "run the kernel tier even when the fast tier failed"})
def test(c, k=None, fast=False, args="", keep_going=False):
    """The test suite: the fast tier, then the kernel tier.

    The kernel tier builds and boots the real kernel, after installing the
    host tools. CI runs exactly ./wb test; --fast runs the fast tier only.
    One closing line counts the whole suite.

    Exit status:
      0    every test passed
      N    pytest's exit code (1 a test failed, 5 none selected)
      2    a host tool could not be installed

    Files:
      reads   tests/
      writes  the test caches, ~/.cache/watchbench-tests* (WATCHBENCH_TEST_CACHE)

    Example:
      ./wb test --fast -k report
    """
    host.test(c, k, fast, args, keep_going)


@task(help={"series": "your series to measure, on top of the bench series (comma-separated)",
            "fragments": "comma-separated kconfig fragments (default: settings)",
            "suite": "benchmark suite (default: settings suite)",
            "accel": ACCEL,
            "tree": "a kernel checkout elsewhere, with --base (default: the one you stand "
                    "in, at HEAD)",
            "base": "with --tree: the base ref", "tarball": "a kernel tarball",
            "trusted": TRUSTED, "kernel_args": KERNEL_ARGS, "kconfig_add": KCONFIG_ADD,
            "uncommitted": UNCOMMITTED},
      iterable=["kconfig_add"], klass=_Task)
def all_(c, series=None, fragments=None, suite=None, accel=None, tree=None, base=None, tarball=None,
         trusted=False, kernel_args=None, kconfig_add=None, uncommitted=False):
    """The whole pipeline: fetch, patch, build, bench, report.

    Installs the host tools, then fetches, configures and builds the default
    Debian tree (inside a kernel checkout: its HEAD; or --tree/--tarball)
    with --series on the bench series, boots
    the suite and writes the report; its headline figures end the output.

    Exit status:
      0    the run is stored and the report written
      2    a step failed (named, with its log), bad input
      130  interrupted (Ctrl-C)

    Files:
      reads   patches/, kconfig/, bench/suites/SUITE.toml
      writes  ~/.cache/watchbench/, a run in ~/.local/share/watchbench/runs/,
              reports/ (index.html, summary.md, results.csv)

    Example:
      ./wb all --series my-fix
    """
    _trust(c, trusted)
    measure.all_(c, series, fragments, suite, accel, tree, base, tarball,
                 kernel_args=kernel_args, kconfig_add=kconfig_add, uncommitted=uncommitted)


kernel_ns = Collection("kernel", fetch, status)
patches_ns = Collection("patches", list_, check_series, apply, reset, import_, lint)
vm_ns = Collection("vm", run, shell, probe)
ns = Collection(deps, settings, config, build, initramfs, bench, profile, report, compare, export,
                runs, gc, ci, bisect, test, correctness_check, kernel_ns, patches_ns, vm_ns)
ns.add_task(all_, name="all")
# The defaults, from the one place they are written; invoke.yaml and the user's config
# override them by the same names (and INVOKE_WATCHBENCH_* variables, since the keys exist).
ns.configure({"watchbench": Settings().as_mapping()})
