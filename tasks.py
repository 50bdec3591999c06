"""watchbench tasks. Each task is a few lines calling the watchbench package; defaults in invoke.yaml."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from watchbench import commands, patching
from watchbench import tree as trees
from watchbench.cli import friendly, settings_of, split_list


@task(help={"check": "only report what is missing; install nothing",
            "tests": "also the packages only the test suite needs (chromium)"})
@friendly
def deps(c, check=False, tests=False):
    """Check host tools; install missing Debian packages (apt-get, as root or via sudo)."""
    commands.ensure_deps(install=not check, tests=tests)


@task(help={"tree": "path of your own kernel git checkout (worked on in a git worktree)",
            "base": "with --tree: the commit/tag the series applies to, e.g. v6.12",
            "tarball": "a kernel source tarball instead of the Debian default"})
@friendly
def fetch(c, tree=None, base=None, tarball=None):
    """Get a kernel tree and make it the active one (default: Debian linux-source, pinned)."""
    commands.fetch(settings_of(c), tree, base, tarball)


@task
@friendly
def status(c):
    """Which tree, base, applied series, configuration and dirty state."""
    print("\n".join(commands.status_lines(trees.active(settings_of(c)))))


@task(name="list")
@friendly
def list_(c):
    """The series under patches/ with their patches."""
    print("\n".join(commands.series_table(settings_of(c))))


@task(help={"series": "series name under patches/ (or a path to a series directory)"})
@friendly
def check(c, series):
    """Dry run: does each patch apply to the base? Names the failing patch, file and hunk."""
    if not commands.check_series(settings_of(c), series):
        raise Exit(code=1)


@task(help={"series": "series name under patches/ (or a path to a series directory)"})
@friendly
def apply(c, series):
    """Apply a series on the base with git am --3way; on failure the tree is left as it was."""
    commands.apply_series(settings_of(c), series)


@task(help={"force": "discard uncommitted changes in the work tree too"})
@friendly
def reset(c, force=False):
    """Back to the bare base: no series."""
    patching.reset(trees.active(settings_of(c)), force=force)
    print("tree reset to its base")


@task(name="import",
      help={"name": "name of the new series directory under patches/",
            "tree": "with --range: your git checkout", "range": "git range, e.g. M^1..M^2",
            "mbox": "an mbox file (a saved thread)", "directory": "a directory of .patch files",
            "force": "replace an existing series of that name"})
@friendly
def import_(c, name, tree=None, range=None, mbox=None, directory=None, force=False):  # noqa: A002
    """Write patches/<name>/ from a git range, an mbox or a directory of patches."""
    out = settings_of(c).patches_dir / name
    if range:
        names = patching.import_range(Path(tree or "."), range, out, force=force)
    elif mbox:
        names = patching.import_mbox(Path(mbox), out, force=force)
    elif directory:
        names = patching.import_directory(Path(directory), out, force=force)
    else:
        raise Exit("give one of --range (with --tree), --mbox or --directory", code=2)
    print(f"wrote {out} with {len(names)} patches")


@task(help={"series": "series name under patches/", "strict": "checkpatch --strict"})
@friendly
def lint(c, series, strict=False):
    """Run the tree's scripts/checkpatch.pl on each patch; counts per patch."""
    settings = settings_of(c)
    results = patching.lint(trees.active(settings), commands.load(settings, series), strict=strict)
    for r in results:
        print(f"{r.patch.name:60} {r.errors} errors {r.warnings} warnings {r.checks} checks")
    if any(r.errors for r in results):
        raise Exit(code=1)


@task(help={"fragments": "comma-separated fragment names under kconfig/ (default: invoke.yaml)"})
@friendly
def config(c, fragments=None):
    """allnoconfig + fragments; fails naming each option that did not survive and why."""
    commands.configure_tree(settings_of(c), split_list(fragments))


@task(help={"force": "build even if this exact kernel was built before"})
@friendly
def build(c, force=False):
    """Build the active tree's bzImage (content-keyed; ccache; progress; log kept)."""
    from watchbench.build import build as build_kernel

    build_kernel(settings_of(c), force=force)


@task
@friendly
def initramfs(c):
    """Compile the guest programs (static) and pack busybox + init + them as cpio.gz."""
    from watchbench.initramfs import base_initramfs

    print(base_initramfs(settings_of(c)))


@task(help={"host": "run on the host-root side (the host's Python and this virtualenv via 9p)",
            "accel": "auto | kvm | tcg | icount (default: invoke.yaml)",
            "timeout": "seconds before the guest is killed (default: invoke.yaml)"})
@friendly
def run(c, host=False, accel=None, timeout=None):
    """Boot the built kernel, run the command after --, stream its output, exit with its code."""
    from watchbench.boot import vm_run

    # invoke joins the words after "--" with spaces, losing quotes: take them from sys.argv.
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else shlex.split(c.remainder)
    if not argv:
        raise Exit("give the command after --, e.g. inv vm.run -- cat /proc/version", code=2)
    raise Exit(code=vm_run(settings_of(c), argv, host, accel, float(timeout) if timeout else None))


@task(help={"accel": "auto | kvm | tcg | icount"})
@friendly
def shell(c, accel=None):
    """Interactive guest console (busybox; host root at /host). Ctrl-A X quits."""
    from watchbench.boot import prepare

    raise Exit(code=prepare(settings_of(c), accel).guest.shell())


@task(help={"refresh": "probe again even if a recent verdict is cached"})
@friendly
def probe(c, refresh=False):
    """Does KVM really work here? Boots a tiny guest under KVM with a 10 s limit."""
    from watchbench.vm.accel import kvm_verdict

    verdict = kvm_verdict(settings_of(c).cache_dir, refresh=refresh)
    print(f"kvm: {'works' if verdict.works else 'unusable'} ({verdict.reason})")


@task(help={"suite": "suite name under bench/suites/ (quick | full) or a .toml path",
            "accel": "auto | kvm | tcg | icount (default: invoke.yaml)",
            "label": "free text stored with the run (e.g. baseline)"})
@friendly
def bench(c, suite="quick", accel=None, label=""):
    """Boot the built kernel; run conformance, then the suite; store a run with its manifest."""
    from watchbench.benchrun import run_bench

    print(run_bench(settings_of(c), suite, accel, label))


@task(help={"baseline": "comma-separated run ids (A side of the A/B table)",
            "candidate": "comma-separated run ids (B side)",
            "runs": "comma-separated run ids to include (default: all)",
            "out": "output directory", "skip_bad": "load the rest when a result file is bad"})
@friendly
def report(c, baseline=None, candidate=None, runs=None, out="reports", skip_bad=False):
    """Self-contained HTML report (+ summary.md, results.csv) of the stored runs."""
    from watchbench.reporting import make_report

    print(make_report(settings_of(c), split_list(runs), split_list(baseline),
                      split_list(candidate), Path(out), skip_bad))


@task(positional=["a", "b"],
      help={"a": "baseline run id(s), comma-separated", "b": "candidate run id(s), comma-separated",
            "markdown": "also write the table as Markdown to this file",
            "skip_bad": "load the rest when a result file is bad",
            "all": "list unchanged metrics too"})
@friendly
def compare(c, a, b, markdown=None, skip_bad=False, all=False):  # noqa: A002
    """A/B table in the terminal: verdict, change, CI and p per benchmark metric."""
    from watchbench.reporting import compare_runs

    print(compare_runs(settings_of(c), split_list(a), split_list(b),
                       Path(markdown) if markdown else None, skip_bad, all))


@task(help={"series": "series to gate, comma-separated (empty: an A/A run of the baseline)",
            "rounds": "paired rounds per kernel: auto (until decided; default) or a number",
            "accel": "icount (default, near-deterministic) | tcg | kvm",
            "suite": "benchmark suite (default: ci)", "per_patch": "also measure after each patch",
            "threshold": "smallest change that counts, as a fraction (default 0.05)",
            "alpha": "family-wise significance level (default 0.01)",
            "accept_undecided": "exit 0 instead of 3 when a gated metric stays undecided",
            "record": "append to the history",
            "out": "report directory", "tree": "your kernel checkout", "base": "with --tree: base ref"})
def ci(c, series="", rounds=None, accel=None, suite=None, per_patch=False, threshold=None,
       alpha=None, accept_undecided=False, record=False, out="reports", tree=None, base=None):
    """Gate a series: exit 0 ok, 1 regressed or broken, 2 infrastructure, 3 undecided."""
    from watchbench.ci import CiOptions, gate

    conf = c.config.get("watchbench", {}).get("ci", {})
    rounds = str(rounds or conf.get("rounds", "auto"))
    if rounds != "auto" and not rounds.isdigit():
        raise Exit(f"--rounds {rounds!r}: give a number of rounds or auto", code=2)
    options = CiOptions(series=series, rounds=None if rounds == "auto" else int(rounds),
                        min_rounds=int(conf.get("min_rounds", 4)),
                        round_step=int(conf.get("round_step", 2)),
                        max_rounds=int(conf.get("max_rounds", 12)),
                        budget_s=float(conf.get("budget_s", 1200)),
                        accel=accel or conf.get("accel", "icount"), suite=suite or conf.get("suite", "ci"),
                        per_patch=per_patch, threshold=float(threshold or conf.get("threshold", 0.05)),
                        alpha=float(alpha or conf.get("alpha", 0.01)),
                        noise_floor=float(conf.get("noise_floor", 0.001)),
                        accept_undecided=accept_undecided, record=record, out=Path(out),
                        tree=tree, base=base)
    raise Exit(code=gate(settings_of(c), options))


@task(help={"good": "a commit where the benchmark was fine", "bad": "a commit where it is slow",
            "benchmark": "benchmark name, e.g. keyctl-post", "metric": "metric (default ns_per_op)",
            "params": "the parameter set, as `inv compare` prints it, when there are several",
            "rounds": "boots per commit (default 3)", "accel": "icount (default) | tcg | kvm",
            "suite": "benchmark suite (default ci)"})
@friendly
def bisect(c, good, bad, benchmark, metric="ns_per_op", params="", rounds=3, accel="icount",
           suite="ci"):
    """Find the commit (in the active tree, e.g. from `kernel.fetch --tree`) that slowed a benchmark."""
    from watchbench.bisect import bisect as run_bisect

    first, steps = run_bisect(settings_of(c), good, bad, benchmark, metric, params, suite, accel,
                              int(rounds))
    print("\n".join(step.describe() for step in steps))
    print(f"first bad commit: {first}")


@task(help={"k": "pytest -k expression", "fast": "skip tests that need the real kernel tree",
            "args": "extra pytest arguments"})
def test(c, k=None, fast=False, args=""):
    """Run the test suite (installs host tools first; integration tests use the real kernel)."""
    import pytest

    if not fast:
        commands.ensure_deps(install=True, tests=True)
    argv = (["-k", k] if k else []) + (["-m", "not kernel"] if fast else []) + args.split()
    raise Exit(code=int(pytest.main(argv)))


@task(help={"series": "your series to measure, on top of the bench series (comma-separated)",
            "fragments": "comma-separated kconfig fragments (default: invoke.yaml)",
            "suite": "benchmark suite (default: invoke.yaml)",
            "accel": "auto | kvm | tcg | icount", "tree": "your kernel checkout (with --base)",
            "base": "with --tree: the base ref", "tarball": "a kernel tarball"})
@friendly
def all_(c, series=None, fragments=None, suite=None, accel=None, tree=None, base=None, tarball=None):
    """The whole pipeline: deps, fetch, patch, config, build, boot, bench, report."""
    from watchbench.pipeline import run_all

    settings = settings_of(c)
    suite = suite or c.config.get("watchbench", {}).get("suite", "quick")
    print(run_all(settings, series, split_list(fragments), suite, accel, tree, base, tarball))


kernel = Collection("kernel", fetch, status)
patches = Collection("patches", list_, check, apply, reset, import_, lint)
vm = Collection("vm", run, shell, probe)
ns = Collection(deps, config, build, initramfs, bench, report, compare, ci, bisect, test, kernel,
                patches, vm)
ns.add_task(all_, name="all")
