"""Shared fixtures and the suite's order. Integration tests use a cache of their own (so a
developer's active tree is never touched) that shares the download and ccache directories
with the real one.

The suite builds two kernel configurations, no more: the bench kernel (our bench series
and its fragment: every boot, gate, interrupt, ccache and misbehaving-guest test) and the
debug kernel of ``inv check``. Fast tests run first; when one fails, the kernel tests are
skipped with that reason, so a unit failure is seen in a minute, not after the builds.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.wheel import installed, wheel  # noqa: F401 -- fixtures: watchbench as installed
from watchbench.cli.host import suite_cache
from watchbench.settings import Settings

DATA = Path(__file__).resolve().parent / "data"
FAST_TIMEOUT = 120  # seconds a test without the kernel mark may take (pyproject: the rest)
# What the test cache keeps between sessions (tests.conftest.pytest_sessionfinish).
KEEP_BOOTS, KEEP_RUNS, KEEP_LOGS, KEEP_KERNELS, KEEP_BUILD_DIRS = 40, 300, 100, 40, 3


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background by a non-interactive shell (`cmd &`) inherits
    SIGINT ignored, and so would every `inv` the interruption tests Ctrl-C, which then
    runs to its end: take Ctrl-C back for this process and its children."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--keep-going", action="store_true",
                     help="run the kernel tests even after a fast test failed")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fast tests first, then the kernel tests in ``KERNEL_ORDER`` (a stable sort keeps
    each module's own order); each fast test gets a short timeout unless it names one."""
    items.sort(key=_tier)
    for item in items:
        if item.get_closest_marker("kernel") is None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FAST_TIMEOUT))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The modules and objects collection made live to the end: frozen, the garbage
    collector stops walking them, and it runs less often. The fast tier is CPU-bound on
    2 cores: 78 and 76 s with this, 87 and 83 s without (suite_times.py --fast, runs
    alternating, docs/figures.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup``: the tests go to the workers by the tree they compose on,
    "side" or "debian" (below), each group whole to one worker, in collection order.
    (xdist's own loadgroup marks do not group under pytest 9, whose node ids they can
    no longer suffix.) ``--dist loadfile`` (pyproject's default, so the fast tier's): each
    module whole to one worker, so that a module-scoped fixture (a report rendered, a flow
    run, the programs compiled) is made once, the heaviest modules first (``FAST_HEAVY``)."""
    if config.getvalue("dist") == "loadfile":
        return _heavy_files_first(config, log)
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByTree(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return tree_group(Path(nodeid.split("::", 1)[0]).stem)

    return ByTree(config, log)


# The fast tier's modules that take longest (their tests' seconds summed, most first: 24 s
# to 5 s each on 2 cores, the rest under 4 s): xdist hands out the modules with the most
# tests first, which would leave one of these, with its few long tests, alone at the end.
FAST_HEAVY = ("test_flows", "test_report", "test_interrupt_cli", "test_shard",
              "test_report_questions", "test_profile_flow", "test_cache_gate",
              "test_hostile_inputs", "test_journal", "test_userspace_build", "test_kunit_parity",
              "test_install", "test_standing")


def _heavy_files_first(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadFileScheduling

    class HeavyFirst(LoadFileScheduling):
        ordered = False

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the work queue is whole from the first assignment on
                self.ordered = True
                weight = {module: index for index, module in enumerate(FAST_HEAVY)}
                order = sorted(self.workqueue, key=lambda scope: weight.get(
                    Path(scope).stem, len(FAST_HEAVY)))  # stable: then xdist's order
                self.workqueue = type(self.workqueue)(
                    (scope, self.workqueue[scope]) for scope in order)
            super()._assign_work_unit(node)

    return HeavyFirst(config, log)


def tree_group(module: str) -> str:
    """The kernel tier's worker group of a test module."""
    return "side" if module in SIDE_MODULES else "debian"


# The kernel tests' modules in the order they run: what builds and times on TCG first,
# then the icount gates, the check last. A module not named runs before the gates.
#
# The kernel tier (`./wb test`) runs in two xdist workers, one per group (``--dist
# loadgroup``), each on trees of its own so that neither changes what the other stands
# on: "debian", the modules that compose on the test cache's Debian tree, and "side"
# (``SIDE_MODULES``), which compose on worktrees of it: the gates, and an installed wb
# run inside a developer's clone of it, on ``side_tree`` (the clone's worktree, in a
# cache of its own that shares the built kernels, so the bench kernel
# is built once: kernel.build locks each kernel's key), the check on the debug kernel's
# worktree. The side worker builds the debug kernel in the background from its first
# test on, at the lowest CPU priority: it takes the cycles the tests leave idle (a
# guest keeps one core busy), so TCG timings barely feel it, and icount figures count
# guest instructions, which host load does not move. In one process (pytest without
# -n) it builds from the first boot of the bench kernel on (``OVERLAP``), for the check
# that runs last.
KERNEL_ORDER = ("test_tree_integration", "test_bench_patch", "test_bench_integration",
                "test_boot_integration", "test_ccache_remote", "*", "test_ci_integration",
                "test_your_branch", "test_profile_integration", "test_interrupt",
                "test_check_integration")
OVERLAP = frozenset(KERNEL_ORDER[KERNEL_ORDER.index("test_bench_integration"):-1])
SIDE_MODULES = frozenset({"test_ci_integration", "test_your_branch",
                          "test_check_integration"})
# What the side cache shares with the test cache: downloads and everything built from
# them by content (kernels by key, allnoconfig, the guest's pieces).
SIDE_SHARES = ("downloads", "ccache", "kernels", "kconfig", "build-steps", "initramfs",
               "guest-src", "userspace", "plugins", "hostview", "probe")


def _in_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")  # an xdist worker


def _module(item: pytest.Item) -> str:
    return Path(str(item.fspath)).stem


def _tier(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker("kernel") is None:
        return (0, 0)
    name = _module(item)
    return (1, KERNEL_ORDER.index(name if name in KERNEL_ORDER else "*"))


_FAST_FAILED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and "kernel" not in report.keywords:
        _FAST_FAILED.append(report.nodeid)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if (_FAST_FAILED and item.get_closest_marker("kernel") is not None
            and not item.config.getoption("--keep-going")):
        pytest.skip(f"{len(_FAST_FAILED)} fast test(s) failed (first: {_FAST_FAILED[0]}); "
                    f"fix them first, or pass --keep-going")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The test cache prunes what the suite grows (boots, runs, logs, kernels, each
    tree's build directories), so that CI on a reused machine does not slow down or fill
    its disk run after run. Under xdist the controller prunes, once every worker is done
    (a worker that finished first would prune under the other)."""
    config = session.config
    if _in_worker(config):
        return
    if session.items:
        if not any(item.get_closest_marker("kernel") for item in session.items):
            return
    elif not getattr(config.option, "numprocesses", None) or \
            config.getoption("markexpr", "").strip() == "not kernel":
        return  # nothing ran here, or the workers ran the fast tier only
    from watchbench.host.prune import prune_children

    for cache in (suite_cache(Settings()), _side_cache(Settings())):
        for directory, keep in ((cache / "boots", KEEP_BOOTS), (cache / "runs", KEEP_RUNS),
                                (cache / "kernels", KEEP_KERNELS)):
            prune_children(directory, keep, dirs_only=True)
        prune_children(cache / "logs", KEEP_LOGS)
        for builds in (cache / "trees").glob("*/build"):
            prune_children(builds, KEEP_BUILD_DIRS, dirs_only=True)


def _side_cache(real: Settings) -> Path:
    return Path(str(suite_cache(real)) + "-side")


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    real = Settings()
    return real.scratch(suite_cache(real), shared=("downloads", "ccache"))


@pytest.fixture(scope="session")
def side_settings(test_settings) -> Settings:
    """The side worker's cache: its own active tree, runs, boots and logs; the test
    cache's kernels and other content-keyed pieces (``SIDE_SHARES``)."""
    side = test_settings.scratch(_side_cache(Settings()), shared=SIDE_SHARES)
    probe = test_settings.cache_dir / "accel-kvm.json"  # the KVM probe's answer (a file)
    if probe.exists() and not (side.cache_dir / probe.name).exists():
        (side.cache_dir / probe.name).symlink_to(probe)
    return side


@pytest.fixture(scope="session")
def side_clone(debian_source, side_settings) -> Path:
    """A developer's clone of the Debian tree, in the side cache: the checkout that `wb ci
    --base` and `wb bisect` run inside (tests/integration/test_your_branch.py), whose
    worktree is ``side_tree``. Sparse (the top-level files and kernel/, which the test's
    commits change): wb reads git's objects, not the checkout's files, and a full checkout
    costs about a minute here. Made again when missing; its branch is the test's to set."""
    import shutil

    from watchbench.host.git import Git

    clone = side_settings.cache_dir / "linux"
    if not (clone / ".git").is_dir():
        shutil.rmtree(clone, ignore_errors=True)
        Git(side_settings.cache_dir)("clone", "-q", "--sparse", str(debian_source.src),
                                     str(clone), timeout=600)
        Git(clone)("sparse-checkout", "add", "kernel")
    return clone


@pytest.fixture(scope="session")
def side_tree(side_clone, side_settings):
    """A worktree of ``side_clone`` at the base, the side cache's active tree: the gates
    and bisect compose there while the other worker uses the Debian tree."""
    from watchbench.kernel import patching, trees

    tree = trees.fetch_user(side_settings, side_clone, trees.BASE_TAG)
    tree = patching.reset(tree, force=True)
    trees.set_active(side_settings, tree)
    return tree


@pytest.fixture(scope="session")
def debian_tree(test_settings):
    """The real Debian 6.12 tree (downloaded and extracted once; cached across runs)."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.patching import reset
    from watchbench.kernel.trees import fetch_debian

    tree = fetch_debian(test_settings, progress=Silent())
    return reset(tree, force=True)


@pytest.fixture
def clean_tree(debian_tree):
    """The Debian tree reset to its bare base before and after the test."""
    from watchbench.kernel.patching import reset

    reset(debian_tree, force=True)
    yield debian_tree
    reset(debian_tree, force=True)


@pytest.fixture(scope="session")
def bench_kernel(debian_tree, test_settings):
    """Our in-kernel benchmark series applied, its fragment added, built once per session:
    the one kernel of every boot test (the debug kernel of `inv check` is the other)."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.variant import Composer, stack

    composer = Composer(test_settings, debian_tree, progress=Silent())
    try:
        return composer.kernel(stack(test_settings))
    finally:
        composer.restore()


@pytest.fixture
def bench_tree(debian_tree, test_settings, bench_kernel):
    """The test cache's Debian tree, active, with the bench series applied and configured
    as ``bench_kernel`` was (so a build there is the bench kernel's, from its build
    directory); bare again afterwards."""
    from watchbench.kernel import patching, trees
    from watchbench.kernel.configure import configure, fragments_for
    from watchbench.kernel.variant import stack

    tree = patching.apply(patching.reset(debian_tree, force=True), stack(test_settings))
    configure(tree, test_settings, fragments_for(test_settings, tree))
    assert tree.config_hash == bench_kernel.config_hash, "the bench configuration moved"
    trees.set_active(test_settings, tree)
    yield tree
    patching.reset(debian_tree, force=True)


@pytest.fixture(scope="session")
def debian_source(test_settings):
    """The Debian tree fetched, as it stands: for a worktree of it, never changed here
    (the other worker may be composing on it)."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.trees import fetch_debian

    return fetch_debian(test_settings, progress=Silent())


# What the check's debug kernel gets through --kconfig-add (settings kconfig_add): the
# option's real proof, on a kernel built anyway (the check tests assert its release).
DEBUG_KCONFIG_ADD = ('CONFIG_LOCALVERSION="-wbcheck"',)


@pytest.fixture(scope="session")
def debug_settings(test_settings) -> Settings:
    """The test settings of the check's debug kernel: an extra option, as --kconfig-add
    gives one."""
    from dataclasses import replace

    return replace(test_settings, kconfig_add=DEBUG_KCONFIG_ADD)


@pytest.fixture(scope="session")
def debug_build(debian_source, debug_settings) -> Iterator[Future]:
    """The check's debug kernel (our bench series, the debug fragments), building in a
    thread at nice 19 on a worktree of its own, so it holds its own tree's lock, not the
    Debian tree's that the other tests compose on; the future's result is that worktree."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.trees import BASE_TAG, fetch_user
    from watchbench.kernel.variant import Composer, stack

    def build() -> object:
        # nice 19 for this thread, so for the make it starts (Linux: niceness is a thread's;
        # the runner carries it to the make's session, whose autogroup would reset it)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        tree = fetch_user(debug_settings, debian_source.src, BASE_TAG)
        composer = Composer(debug_settings, tree, progress=Silent(), purpose="check")
        try:
            composer.kernel(stack(debug_settings),
                            [*debug_settings.fragments, *debug_settings.check.fragments])
        finally:
            composer.restore()
        return tree

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="debug-build") as pool:
        yield pool.submit(build)


@pytest.fixture(autouse=True)
def _debug_builds_meanwhile(request: pytest.FixtureRequest) -> None:
    """Start ``debug_build`` early when the check runs later in this process: in an
    xdist worker, from the side group's first test on; in one process, once the bench
    kernel is there."""
    module = _module(request.node)
    if request.node.get_closest_marker("kernel") is None or not any(
            _module(item) == "test_check_integration" for item in request.session.items):
        return
    if module in SIDE_MODULES if _in_worker(request.config) else (
            module in OVERLAP or module not in KERNEL_ORDER):  # not named: "*"
        request.getfixturevalue("debug_build")


@pytest.fixture
def debug_kernels(debug_build, debug_settings):
    """A composer on the debug kernel's worktree (built already, or being built)."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.variant import Composer

    return Composer(debug_settings, debug_build.result(), progress=Silent(), purpose="check")


@pytest.fixture(scope="session")
def guest(bench_kernel, test_settings):
    from watchbench.guest.initramfs import base_initramfs
    from watchbench.vm.session import Guest

    return Guest(bench_kernel.bzimage, base_initramfs(test_settings), "tcg", test_settings.cache_dir)
