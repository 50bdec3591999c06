"""``wb runs`` lists the stored runs from their manifests; ``wb gc`` prunes runs, kernels,
build directories, boots and logs by count and age, keeps what the history, the kept runs
and running commands need, and is a dry run unless --delete (issue 30)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.program import helps_kept
from watchbench.cli.program import WatchbenchProgram
from watchbench.cli.tasks import ns
from watchbench.flows import gc
from watchbench.host.lock import held_by
from watchbench.host.runner import default_runner
from watchbench.results.catalog import stored_runs
from watchbench.results.history import HISTORY_FILE, record
from watchbench.settings import GcSettings, Settings

DAY = 86400.0
NOW = time.time()


def _age(path: Path, days: float) -> Path:
    stamp = NOW - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def _run(runs: Path, run_id: str, days: float, kernel: str = "k0", **extra) -> Path:
    """A stored run made ``days`` ago on kernel ``kernel``."""
    path = runs / run_id
    (path / "raw").mkdir(parents=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - days * DAY))
    manifest = {"schema_version": 1, "run_id": run_id, "timestamp": when, "accel": "icount",
                "kernel_version": "6.12.117+", "base_label": "debian 6.12",
                "series_name": "watch_queue-bench", "kernel_key": kernel, "suite": "ci",
                "label": "baseline", **extra}
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "results.parquet").write_bytes(b"x" * 100)
    return _age(path, days)


def _kernel(cache: Path, key: str, days: float, tree: str = "t1") -> Path:
    path = cache / "kernels" / key
    path.mkdir(parents=True)
    (path / "bzImage").write_bytes(b"k" * 4096)
    (path / "kernel.json").write_text(json.dumps({"key": key, "tree_id": tree}))
    return _age(path, days)


@pytest.fixture
def world(tmp_path: Path) -> Settings:
    """A cache and runs dir with old and new things of every kind."""
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    for number, days in enumerate([30, 29, 28, 27, 0.01]):
        _run(runs, f"run{number}", days, kernel=f"k{number}")
    record(runs / HISTORY_FILE, ["run0"])  # the oldest, named by the history
    for number, days in enumerate([40, 39, 38, 37]):
        _kernel(cache, f"k{number}", days)
    _kernel(cache, "k9", 50)  # no run was made on it
    tree = cache / "trees" / "t1"
    (tree / "build").mkdir(parents=True)
    (tree / "tree.json").write_text(json.dumps({"config_hash": "cfgcurrent"}))
    (tree / "lock").touch()
    for name, days in (("cfgold1", 60), ("cfgold2", 50), ("cfgcurrent", 70)):
        (tree / "build" / name).mkdir()
        (tree / "build" / name / "vmlinux").write_bytes(b"v" * 8192)
        _age(tree / "build" / name, days)
    for number, days in enumerate([20, 19, 0.001]):
        boot = cache / "boots" / f"boot{number}"
        boot.mkdir(parents=True)
        _age(boot, days)
        log = cache / "logs" / f"build-{number}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("log")
        _age(log, days)
    return Settings(cache_dir=cache, runs_dir=runs)


KEEP_NONE = GcSettings(runs=0, kernels=0, build_dirs=0, boots=0, logs=0, days=7)


def too_wide(text: str) -> list[str]:
    """Lines over 80 columns that are more than one long word (a path stays whole)."""
    return [line for line in text.splitlines() if len(line) > 80 and len(line.split()) > 1]


def _names(plan: gc.Plan, kind: gc.Kind) -> set[str]:
    return {e.path.name for e in plan.of(kind)}


def _tree(root: Path) -> dict[str, float]:
    return {str(p): p.lstat().st_mtime for p in sorted(root.rglob("*"))}


def test_what_the_history_the_kept_runs_and_the_recent_need_stays(world):
    plan = gc.plan(world, KEEP_NONE, now=NOW)
    assert _names(plan, gc.Kind.RUNS) == {"run1", "run2", "run3"}  # run0: history, run4: new
    # the kernels of the kept runs (k0, k4) stay; the others are old
    assert _names(plan, gc.Kind.KERNELS) == {"k1", "k2", "k3", "k9"}
    assert _names(plan, gc.Kind.BUILD_DIRS) == {"cfgold1", "cfgold2"}  # not the current one
    assert _names(plan, gc.Kind.BOOTS) == {"boot0", "boot1"}
    assert _names(plan, gc.Kind.LOGS) == {"build-0.log", "build-1.log"}
    assert plan.kept[gc.Kind.RUNS] == 2 and plan.kept[gc.Kind.BUILD_DIRS] == 1
    assert all(e.size > 0 for e in plan.entries)


def test_counts_and_age_both_limit_what_goes(world):
    counted = gc.plan(world, GcSettings(runs=2, kernels=2, build_dirs=1, boots=5, logs=5,
                                        days=7), now=NOW)
    # the newest two runs stay (run4, run3), plus the history's run0
    assert _names(counted, gc.Kind.RUNS) == {"run1", "run2"}
    assert _names(counted, gc.Kind.BUILD_DIRS) == {"cfgold1"}
    assert not counted.of(gc.Kind.BOOTS) and not counted.of(gc.Kind.LOGS)
    young = gc.plan(world, GcSettings(runs=0, kernels=0, build_dirs=0, boots=0, logs=0,
                                      days=365), now=NOW)
    assert young.entries == []


def test_nothing_touched_in_the_last_hour_goes_even_when_asked_for_everything(world):
    plan = gc.plan(world, GcSettings(runs=0, kernels=0, build_dirs=0, boots=0, logs=0,
                                     days=0), now=NOW)
    assert "run4" not in _names(plan, gc.Kind.RUNS) and "boot2" not in _names(plan,
                                                                              gc.Kind.BOOTS)


@contextlib.contextmanager
def another_process_holds(path: Path, since: float):
    """A lock held as another command holds it: its own open file, its flock, its note
    (not through host.lock, whose locks this process would re-enter)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps({"pid": 4242, "command": "./wb ci", "since": since}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_what_a_running_command_holds_or_made_since_it_started_stays(world):
    tree_lock = world.cache_dir / "trees" / "t1" / "lock"
    assert held_by(tree_lock) is None
    with another_process_holds(tree_lock, since=NOW - 28.5 * DAY):
        assert held_by(tree_lock)["pid"] == 4242
        plan = gc.plan(world, KEEP_NONE, now=NOW)
    assert held_by(tree_lock) is None
    assert not plan.of(gc.Kind.BUILD_DIRS)  # the tree is in use
    assert not plan.of(gc.Kind.KERNELS)  # every kernel here was built from that tree
    held = {p.name for p, _ in plan.held}
    assert {"cfgold1", "cfgold2", "k1", "k9"} <= held
    assert all("pid 4242 (./wb ci)" in who for _, who in plan.held)
    assert _names(plan, gc.Kind.RUNS) == {"run1"}  # run2, run3: made after it started
    assert any("running: pid 4242" in note for note in plan.notes)


def test_a_dry_run_changes_nothing_and_delete_removes_exactly_the_plan(world, capsys):
    before = {**_tree(world.cache_dir), **_tree(world.runs_dir)}
    code, out = wb(world, "gc", "--keep-runs", "0", "--keep-kernels", "0", "--keep-builds", "0",
                   "--keep-boots", "0", "--older-than", "7")
    assert code == 0 and out.startswith("dry run: nothing removed"), out
    assert "to free it: ./wb gc --delete" in out and not too_wide(out)
    assert {**_tree(world.cache_dir), **_tree(world.runs_dir)} == before
    planned = gc.plan(world, GcSettings(runs=0, kernels=0, build_dirs=0, boots=0,
                                        logs=world.gc.logs, days=7))
    code, out = wb(world, "gc", "--delete", "--keep-runs", "0", "--keep-kernels", "0",
                   "--keep-builds", "0", "--keep-boots", "0", "--older-than", "7")
    assert code == 0 and out.startswith("removed"), out
    after = {**_tree(world.cache_dir), **_tree(world.runs_dir)}
    gone = {str(e.path) for e in planned.entries}
    assert gone and not gone & set(after)
    # what was not planned is all there; a removed kernel's build lock went with it
    # (removed while held: host.lock takes a removed file's successor, test_lock.py)
    assert not [p for p in after if p.endswith(".lock") and p.removesuffix(".lock") in gone]
    assert {p for p in before if not any(p == g or p.startswith(g + "/") for g in gone)} \
        == set(after)


def test_the_build_locks_of_kernels_already_gone_go_too(world, capsys):
    """A cache gc'd before kept a removed kernel's lock file; they go, a held one stays,
    and one taken after the plan is skipped."""
    kernels = world.cache_dir / "kernels"
    (kernels / "gone1.lock").write_text("")
    (kernels / "gone2.lock").write_text("")
    (kernels / "k1.lock").write_text("")  # its kernel is there: not stale
    code, out = wb(world, "gc", "--keep-kernels", "40", "--keep-runs", "40")
    assert code == 0 and "and 2 lock file(s) of kernels already gone" in out, out
    with another_process_holds(kernels / "gone2.lock", since=time.time()):
        code, out = wb(world, "gc", "--delete", "--keep-kernels", "40", "--keep-runs", "40")
    assert code == 0 and "and 1 lock file(s) of kernels already gone" in out, out
    assert sorted(p.name for p in kernels.glob("*.lock")) == ["gone2.lock", "k1.lock"]
    plan = gc.plan(world)
    assert [p.name for p in plan.stale_locks] == ["gone2.lock"]
    with another_process_holds(kernels / "gone2.lock", since=time.time()):
        removed, skipped = gc.free(plan)  # taken after the plan: skipped
    assert [p.name for p, _ in skipped] == ["gone2.lock"] and (kernels / "gone2.lock").exists()


def test_delete_skips_what_a_command_took_after_the_plan(world):
    plan = gc.plan(world, KEEP_NONE, now=NOW)
    tree_lock = world.cache_dir / "trees" / "t1" / "lock"
    with another_process_holds(tree_lock, since=time.time()):
        removed, skipped = gc.free(plan)
    skipped_names = {p.name for p, _ in skipped}
    assert {"cfgold1", "cfgold2", "k1", "k2", "k3", "k9"} == skipped_names
    assert all((world.cache_dir / "trees" / "t1" / "build" / n).exists()
               for n in ("cfgold1", "cfgold2"))
    assert {e.path.name for e in removed} >= {"run1", "run2", "run3", "boot0"}


def test_an_unreadable_history_keeps_every_run(world):
    (world.runs_dir / HISTORY_FILE).write_text("{not json\n")
    plan = gc.plan(world, KEEP_NONE, now=NOW)
    assert not plan.of(gc.Kind.RUNS)
    assert any("history cannot be read" in note for note in plan.notes)


# --- wb runs ---------------------------------------------------------------------------


def wb(settings: Settings, *argv: str) -> tuple[int, str]:
    """``./wb ARGV`` in this process on ``settings``' cache and runs dir."""
    out = io.StringIO()
    code = 0
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(settings.runs_dir)}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("INVOKE_")}
    os.environ.update(env)
    try:
        with helps_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                WatchbenchProgram(namespace=ns, name="watchbench", binary="./wb").run(
                    ["./wb", *argv])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)
    return code, out.getvalue()


def test_runs_lists_newest_first_in_80_columns_with_what_tells_them_apart(world):
    (world.runs_dir / "broken").mkdir()
    (world.runs_dir / "broken" / "manifest.json").write_text("{")
    _age(world.runs_dir / "broken", 100)  # no timestamp: placed by its directory's time
    _run(world.runs_dir, "unfinished", 0.5, label="x" * 90).joinpath("results.parquet").unlink()
    code, out = wb(world, "runs")
    assert code == 0, out
    lines = out.splitlines()
    assert not too_wide(out), lines
    summary = next(i for i, line in enumerate(lines) if line.startswith("7 runs under"))
    ids = [line.split()[0] for line in lines[2:summary:2]]
    assert ids[:3] == ["run4", "unfinished", "run3"] and ids[-1] == "broken"
    first = lines[2]
    assert "icount" in first and " ci " in first and "baseline" in first
    assert lines[3].strip().startswith("6.12.117+ + watch_queue-bench  (debian 6.12)")
    assert "[no results]" not in first and lines[4].endswith("…")
    assert "unreadable manifest.json" in out


def test_runs_show_the_extra_boot_parameters_and_kconfig_options(world):
    """Runs that differ in them are not compared (the gate refuses): the listing says so."""
    _run(world.runs_dir, "tuned", 0.01, kernel_args=["nokaslr", "mitigations=off"],
         kconfig_add=["CONFIG_DEBUG_FS=y"])
    code, out = wb(world, "runs", "--limit", "1")
    assert code == 0, out
    assert out.splitlines()[4] == (
        "    args: nokaslr mitigations=off  kconfig: CONFIG_DEBUG_FS=y"), out


def test_runs_limit_shows_the_newest_and_says_how_to_see_all(world):
    code, out = wb(world, "runs", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines[2:6:2]] == ["run4", "run3"]
    assert "the newest 2; all of them: ./wb runs --limit 0" in " ".join(" ".join(lines).split())
    code, out = wb(world, "runs", "--limit", "0")
    assert code == 0 and out.count("\n    6.12.117+") == 5


def test_stored_runs_of_a_missing_directory_is_empty(tmp_path):
    assert stored_runs(tmp_path / "nope") == []


def test_runs_and_the_listing_start_without_pandas():
    """`wb runs` must start as fast as --list: no module it imports pulls in pandas (a
    fresh interpreter: this one has imported everything)."""
    code = ("import sys, watchbench.cli.runs, watchbench.cli.tasks, watchbench.cli.program; "
            "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'jinja2', 'scipy', "
            "'matplotlib') if m in sys.modules))")
    done = default_runner.run([sys.executable, "-c", code], timeout=60)
    assert done.stdout.strip() == "[]"


def test_no_task_gets_a_dash_for_a_short_flag():
    """invoke names short flags after a free letter of the option; with every letter of
    --keep-boots taken by the other --keep-* options it took "-" (`--=STRING` in gc's help):
    gc has long options only."""
    with helps_kept():  # to_contexts pops each task's help (invoke)
        contexts = ns.to_contexts()
    bad = {ctx.name: sorted(f for f in ctx.flags if f.strip("-") in ("", "_"))
           for ctx in contexts}
    assert {name: flags for name, flags in bad.items() if flags} == {}
    gc_flags = {f for ctx in contexts if ctx.name == "gc" for f in ctx.flags}
    assert gc_flags == {"--delete", "--keep-runs", "--keep-kernels", "--keep-builds",
                        "--keep-boots", "--older-than"}
