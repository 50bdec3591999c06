"""Ctrl-C and SIGKILL of a real `inv` while it configures, builds and boots the real kernel
tree, then the same command again: it succeeds, no lock is left held, nothing half-written
is taken as good, no make or QEMU outlives it, and a killed guest keeps its console log.
(Fetch, apply and report: tests/unit/test_interrupt_cli.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.interrupting import INV, gone, interrupt, killed_as, processes, run
from watchbench.kernel import kconfig_cache, patching, trees
from watchbench.kernel.series import load_series

pytestmark = pytest.mark.kernel
DATA = Path(__file__).resolve().parents[1] / "data" / "patches"

SIGNALS = [pytest.param(signal.SIGINT, id="sigint"), pytest.param(signal.SIGKILL, id="sigkill")]


# In the environment of every `inv` these tests start, so of its QEMUs: the test cache's
# other users (the check's worker runs beside this one) have QEMUs of their own.
MARK = f"WATCHBENCH_TEST_INTERRUPT={os.getpid()}"


def _env(settings) -> dict[str, str]:
    name, value = MARK.split("=")
    return {"INVOKE_WATCHBENCH_CACHE_DIR": str(settings.cache_dir),
            "INVOKE_WATCHBENCH_RUNS_DIR": str(settings.runs_dir), name: value}


@pytest.fixture
def configured(bench_tree, test_settings):
    """The test cache's Debian tree, active, with the bench series and configured as the
    bench kernel was (so a build there is the bench kernel's, from its build directory)."""
    return bench_tree, _env(test_settings)


@pytest.fixture
def with_user_series(debian_tree, test_settings, bench_kernel):
    """The active tree carrying a series of the user's own, which `inv ci` must leave
    exactly as it found it."""
    mine = patching.apply(patching.reset(debian_tree, force=True),
                          load_series(DATA, "two-patch"))
    trees.set_active(test_settings, mine)
    yield mine, _env(test_settings)
    patching.reset(debian_tree, force=True)


@pytest.mark.parametrize("sig", SIGNALS)
def test_config_interrupted_while_make_runs(configured, test_settings, sig):
    tree, env = configured
    before = (tree.root / "tree.json").read_text()
    # make must run; the directory stays: the side cache links to it
    for cached in kconfig_cache.directory(test_settings.cache_dir).glob("*.config"):
        cached.unlink(missing_ok=True)
    make = f"O={tree.root / 'kconfig-stage'}"
    outcome = interrupt([*INV, "config"], env, lambda _: bool(processes(make)), sig)
    assert killed_as(outcome, sig), outcome.tail()
    assert gone(make), "make outlived the interrupted inv config"
    assert (tree.root / "tree.json").read_text() == before  # the old configuration stands

    again = run([*INV, "config"], env)
    assert again.returncode == 0, again.tail()
    digest = re.search(r"^config ([0-9a-f]+):", "\n".join(again.lines), re.M)
    assert digest, again.tail()
    assert json.loads((tree.root / "tree.json").read_text())["config_hash"] == digest[1]
    assert (tree.root / "configs" / f"{digest[1]}.config").stat().st_size > 1000


def _linking(lines: list[str]) -> bool:
    """True once make links vmlinux.o: the build is past its compiles, mid-link."""
    logs = [m[1] for m in (re.search(r"\(log (\S+)\)$", ln) for ln in lines) if m]
    if not logs or not Path(logs[-1]).exists():
        return False
    return bool(re.search(r"^\s+LD\s+vmlinux\.o$", Path(logs[-1]).read_text(), re.M))


def test_build_interrupted_mid_link_by_ctrl_c_then_killed_then_builds_and_boots(configured):
    """Ctrl-C mid-link; the same build again, SIGKILL mid-link; the same build again
    succeeds, and what comes out boots. One build after the other, as a developer would
    go on: the build after the Ctrl-C gets as far as the link, and the last one finishes
    on what both interruptions left (a torn file taken as up to date would not boot)."""
    tree, env = configured
    make = f"O={tree.root / 'build' / tree.config_hash}"
    os.utime(tree.src / "kernel" / "watch_queue.c")  # make has work to do; the key is the same
    # Touched once: the build after the Ctrl-C links vmlinux.o again only because the
    # Ctrl-C left it unfinished, not taken as up to date (else it is never killed mid-link).
    for sig in (signal.SIGINT, signal.SIGKILL):
        outcome = interrupt([*INV, "build", "--force"], env, _linking, sig)
        assert killed_as(outcome, sig), outcome.tail()
        assert gone(make, within=20), f"make outlived inv build, interrupted by {sig.name}"

    again = run([*INV, "build", "--force"], env)
    assert again.returncode == 0, again.tail()
    log = next(m[1] for m in (re.search(r"\(log (\S+)\)$", ln) for ln in again.lines) if m)
    # The killed link is redone (vmlinux.o itself too, when the kill landed inside it), and
    # what comes out boots: nothing torn was taken as up to date.
    assert re.search(r"^\s+LD\s+vmlinux$", Path(log).read_text(), re.M), Path(log).read_text()
    boot = run([*INV, "vm.run", "--", "true"], env)
    assert boot.returncode == 0, boot.tail()


def _qemus() -> list[int]:
    """The QEMUs of the `inv` this test started (by ``MARK`` in their environment)."""
    mine = []
    for pid in processes("qemu-system"):
        try:
            if MARK.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                mine.append(pid)
        except OSError:  # gone meanwhile
            continue
    return mine


@pytest.mark.parametrize("sig", SIGNALS)
def test_bench_interrupted_mid_boot_kills_the_guest(configured, test_settings, sig):
    """A real `inv bench` is interrupted while its guest runs: no QEMU outlives it, the
    console log so far is kept, the half run is not taken as a result, and the same
    command then works."""
    _, env = configured
    argv = [*INV, "bench", "--suite", "ci", "--accel", "icount", "--label", "interrupted"]
    started: list[float] = []

    def booting(lines: list[str]) -> bool:  # three seconds into the boot
        if not started and any(ln.startswith("[bench] suite ci ") and " -> " in ln for ln in lines):
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] > 3

    outcome = interrupt(argv, env, booting, sig)
    assert killed_as(outcome, sig), outcome.tail()
    run_dir = Path(next(ln for ln in outcome.lines if ln.startswith("[bench] suite ci "))
                   .rsplit(" -> ", 1)[1])
    assert not (run_dir / "results.parquet").exists()
    deadline = time.monotonic() + 10
    while _qemus() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _qemus() == [], "QEMU outlived the interrupted bench"
    boots = (test_settings.cache_dir / "boots").glob(f"*-{outcome.pid}-*")
    logs = [(boot / "console.log").read_text(errors="replace") for boot in boots]
    assert len(logs) == 1 and "Linux version" in logs[0], logs

    again = run([*argv[:-1], "again"], env)
    assert again.returncode == 0, again.tail()
    fresh = next(Path(ln.removeprefix("run: ")) for ln in reversed(again.lines)
                 if ln.startswith("run: /"))  # the run directory, after the headline
    assert (fresh / "results.parquet").exists() and fresh != run_dir


@pytest.mark.parametrize("sig", SIGNALS)
def test_ci_interrupted_with_two_guests_running_leaves_none(with_user_series, test_settings,
                                                            tmp_path, sig):
    """`inv ci --jobs 2`: both guests of a round are running when the gate is interrupted.
    Neither outlives it (Ctrl-C: killed from the main thread; SIGKILL: each dies with the
    thread that started it) and the tree is as it was. After SIGKILL, the harder case (no
    cleanup ran: the next command replays the journal), the same gate then answers: the
    suite's real A/A, under the default settings (icount, the cache model's estimate gated
    too), which is exit 0, decided within its first looks, explained in full with no
    function moved, and leaves the user's tree and its series exactly as they
    were."""
    tree, env = with_user_series
    before = (tree.git().head(), (tree.root / "tree.json").read_text())
    reports = tmp_path / "reports"
    argv = [*INV, "ci", "--jobs", "2", "--out", str(reports)]  # rounds auto: 4 can be undecided
    outcome = interrupt(argv, env, lambda _: len(_qemus()) == 2, sig)
    assert killed_as(outcome, sig), outcome.tail()
    deadline = time.monotonic() + 10
    while _qemus() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _qemus() == [], "a guest outlived the interrupted ci"
    assert (tree.git().head(), (tree.root / "tree.json").read_text()) == before
    if sig != signal.SIGKILL:
        return

    again = run([*argv, "--profile", "all"], env)
    assert again.returncode == 0, again.tail()
    out = "\n".join(again.lines)
    assert "watchbench ci: OK (exit 0)" in out, again.tail()
    # the default gate under icount is the cache model's too: its estimate is gated, and
    # an A/A stays exit 0 with it
    assert "with the cache model's est_cycles_per_op (a model)" in " ".join(out.split())
    decided = re.search(r"stopped: every gated metric decided after (\d+) rounds", out)
    assert decided and int(decided[1]) <= 6, again.tail()  # icount: within the first looks
    assert "no function changed" in (reports / "summary.md").read_text()
    assert (tree.git().head(), (tree.root / "tree.json").read_text()) == before
    assert json.loads(before[1])["series"] == "two-patch"
