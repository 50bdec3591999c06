"""Build every userspace program exactly as the pipeline does, and run them on the host.

The host kernel has no CONFIG_WATCH_QUEUE, so the benchmarks must emit well-formed
``skipped`` records naming ENOPKG, and the conformance suite a KTAP skip plan. The real
measurements only happen in the guest (see bench/README.md).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from watchbench.host.runner import default_runner

ROOT = Path(__file__).resolve().parents[2]
USERSPACE = ROOT / "userspace"
SUITES = ROOT / "bench" / "suites"
PROGRAMS: dict[str, Any] = tomllib.loads((USERSPACE / "programs.toml").read_text())["programs"]
BENCHMARKS = sorted(n for n, p in PROGRAMS.items() if p["kind"] == "benchmark")
RECORD_NAMES = {"wq-keyctl-post": "keyctl-post", "wq-pipe-read": "pipe-read",
                "wq-overflow": "overflow", "wq-kernel-post": "kernel-post"}
SMALL_ARGS = {
    "wq-keyctl-post": ["--iterations", "10", "--queues", "1,2"],
    "wq-pipe-read": ["--iterations", "2", "--sizes", "16,4096"],
    "wq-overflow": ["--iterations", "10", "--queue-sizes", "32,512"],
    "wq-kernel-post": ["--iterations", "10", "--queues", "1,2", "--lengths", "16,127"],
}
# Records a configuration above must produce (one skipped record per configuration).
EXPECTED_ROWS = {"wq-keyctl-post": 1 + 3 * 2, "wq-pipe-read": 2 * 2, "wq-overflow": 2,
                 "wq-kernel-post": 3 * 2 * 2 + 2}


def host_has_watch_queue() -> bool:
    try:
        r, w = os.pipe2(os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.ENOPKG:
            return False
        raise
    os.close(r)
    os.close(w)
    return True


needs_no_watch_queue = pytest.mark.skipif(
    host_has_watch_queue(), reason="host kernel has CONFIG_WATCH_QUEUE: no skip path to test")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing (a host dependency)")
    out_dir = tmp_path_factory.mktemp("userspace")
    out = {}
    for name, prog in PROGRAMS.items():
        exe = out_dir / name
        srcs = [USERSPACE / s for s in prog["sources"]]
        res = default_runner.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", exe, *srcs],
                                 check=False, timeout=300)
        assert res.returncode == 0, f"{name} does not build:\n{res.stderr}"
        out[name] = exe
    return out


def run(exe: Path, *args: str) -> Any:
    return default_runner.run([exe, *args], check=False, timeout=120)


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def check_record(rec: dict[str, Any], benchmark: str, source: str) -> None:
    """The bench/RECORDS.md schema."""
    assert rec["schema"] == 1
    assert rec["benchmark"] == benchmark
    assert rec["source"] == source
    assert isinstance(rec["params"], dict) and rec["params"]
    for k, v in rec["params"].items():
        assert isinstance(k, str) and isinstance(v, str | int | float | bool), (k, v)
    assert rec["status"] in ("ok", "skipped", "failed")
    if rec["status"] == "ok":
        assert "reason" not in rec
        for key in ("repeat", "iterations", "warmup"):
            assert isinstance(rec[key], int) and rec[key] >= 0, key
        assert rec["totals"]["ns"] > 0
        assert rec["metrics"], "an ok record without metrics"
        for name, m in rec["metrics"].items():
            assert set(m) - {"primary"} == {"value", "unit", "direction"}, name
            assert m.get("primary", True) is True, name  # present only as true
            assert isinstance(m["value"], int | float) and math.isfinite(m["value"]), name
            assert m["value"] > 0, name
            assert m["unit"] and m["direction"] in ("lower", "higher"), name
        primary = [n for n, m in rec["metrics"].items() if m.get("primary")]
        assert len(primary) == 1, primary  # one gated figure per measurement
    else:
        assert rec["reason"], "a skipped/failed record without a reason"
        assert "metrics" not in rec and "totals" not in rec and "counts" not in rec


def test_programs_toml_covers_every_source() -> None:
    listed = {s for p in PROGRAMS.values() for s in p["sources"]}
    on_disk = {p.name for p in USERSPACE.glob("*.c")}
    assert listed == on_disk
    for name, prog in PROGRAMS.items():
        assert prog["sources"][0] == f"{name}.c"
        assert prog["kind"] in ("benchmark", "conformance")


def test_all_programs_build_with_werror(built: dict[str, Path]) -> None:
    for name, exe in built.items():
        assert exe.is_file() and os.access(exe, os.X_OK), name


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_help_and_usage_errors(built: dict[str, Path], name: str) -> None:
    res = run(built[name], "--help")
    assert res.returncode == 0 and "usage:" in res.stdout
    assert run(built[name], "--no-such-option").returncode == 2
    assert run(built[name], "stray-argument").returncode == 2


@pytest.mark.parametrize("name", BENCHMARKS)
def test_bad_numbers_are_usage_errors(built: dict[str, Path], name: str) -> None:
    res = run(built[name], "--iterations", "0")
    assert res.returncode == 2 and "--iterations" in res.stderr
    assert run(built[name], "--repeats", "x").returncode == 2


@needs_no_watch_queue
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_emits_skipped_records_on_host(built: dict[str, Path], name: str) -> None:
    res = run(built[name], *SMALL_ARGS[name])
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    non_json = [ln for ln in res.stdout.splitlines() if ln and not ln.startswith("{")]
    assert not non_json, f"stdout must be JSON Lines only: {non_json}"
    assert len(recs) == EXPECTED_ROWS[name]
    source = "kernel" if name == "wq-kernel-post" else "c"
    for rec in recs:
        check_record(rec, RECORD_NAMES[name], source)
        assert rec["status"] == "skipped"
        assert "ENOPKG" in rec["reason"] and "O_NOTIFICATION_PIPE" in rec["reason"]
    # Each configuration appears exactly once.
    keys = {json.dumps(r["params"], sort_keys=True) for r in recs}
    assert len(keys) == len(recs)


@needs_no_watch_queue
def test_conformance_skips_whole_plan_on_host(built: dict[str, Path]) -> None:
    res = run(built["wq-conformance"])
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "KTAP version 1"
    plans = [ln for ln in lines if ln.startswith("1..")]
    assert len(plans) == 1 and plans[0].startswith("1..0 # SKIP ")
    assert "ENOPKG" in plans[0]
    assert not any(ln.startswith(("ok ", "not ok ")) for ln in lines)


def test_conformance_lists_the_required_checks(built: dict[str, Path]) -> None:
    names = run(built["wq-conformance"], "--list").stdout.split()
    assert len(names) == len(set(names))
    for need in ("set_size_zero_einval", "set_size_513_einval", "set_size_twice_ebusy",
                 "set_size_plain_pipe_enodev", "set_filter_zero_filters_einval",
                 "set_filter_17_filters_einval", "set_filter_reserved_einval",
                 "set_filter_info_filter_outside_mask_einval", "set_filter_unknown_types_ignored",
                 "set_filter_bad_pointer_efault", "write_exdev", "splice_exdev_einval",
                 "tee_einval", "vmsplice_ebadf", "f_setpipe_sz_ebusy",
                 "watch_key_duplicate_ebusy", "watch_key_remove_missing_ebadslt",
                 "notify_add_key_linked", "notify_update", "notify_link", "notify_unlink",
                 "notify_clear", "notify_revoke", "notify_invalidate", "notify_setperm_setattr",
                 "notify_chown_setattr", "notify_set_timeout_setattr",
                 "removal_on_unwatch", "removal_on_key_destroyed",
                 "loss_record_after_overflow", "filter_include_subtype",
                 "filter_exclude_subtype", "filter_exclude_type"):
        assert need in names


def test_plain_pipe_read_measures_on_host(built: dict[str, Path]) -> None:
    """The plain-pipe half of pipe-read needs no watch_queue: real, positive figures."""
    res = run(built["wq-pipe-read"], "--pipes", "plain", "--iterations", "3", "--warmup", "1",
              "--repeats", "2", "--sizes", "16,64,8192", "--queue-size", "64")
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    assert len(recs) == 3 * 2
    for rec in recs:
        check_record(rec, "pipe-read", "c")
        assert rec["status"] == "ok"
        assert rec["totals"]["records"] == 3 * 64
        assert rec["totals"]["bytes"] == 3 * 64 * 16
        assert rec["metrics"]["records_per_s"]["unit"] == "record/s"
        assert rec["metrics"]["ns_per_record"]["unit"] == "ns"
    per_read = {r["params"]["read_size"]: r["metrics"]["records_per_read"]["value"] for r in recs}
    assert per_read == {16: 1, 64: 4, 8192: 64}


def load_suite(name: str) -> dict[str, Any]:
    return tomllib.loads((SUITES / f"{name}.toml").read_text())


@pytest.mark.parametrize("suite", ["quick", "full"])
def test_suite_schema(suite: str) -> None:
    data = load_suite(suite)
    assert data["suite"]["name"] == suite
    assert data["suite"]["budget_s"] > 0
    runs = data["run"]
    assert runs[0]["kind"] == "conformance", "conformance must run first"
    names = [r["name"] for r in runs]
    assert len(names) == len(set(names))
    covered = set()
    for r in runs:
        assert r["kind"] in ("c", "python", "conformance")
        assert isinstance(r["args"], list) and all(isinstance(a, str) for a in r["args"])
        if r["kind"] == "python":
            assert (ROOT / r["path"]).exists() and r["path"].startswith("userspace/")
        else:
            assert r["program"] in PROGRAMS
        covered.update(r.get("benchmarks", []))
    assert covered == {"keyctl-post", "pipe-read", "overflow", "kernel-post",
                       "py-keyctl-post", "py-pipe-read"}
    if suite == "quick":
        assert data["suite"]["budget_s"] <= 60


@pytest.mark.parametrize("suite", ["quick", "full"])
def test_suite_arguments_are_accepted(built: dict[str, Path], suite: str) -> None:
    """Every suite entry's argv parses (on the host it then skips, exit 0)."""
    for r in load_suite(suite)["run"]:
        if r["kind"] == "python":
            continue
        res = run(built[r["program"]], *r["args"])
        assert res.returncode == 0, f"{r['name']}: {res.stderr}"
        if r["kind"] == "c":
            recs = records(res.stdout)
            assert recs and {x["benchmark"] for x in recs} == set(r["benchmarks"])


@needs_no_watch_queue
@pytest.mark.parametrize("suite", ["quick"])
def test_python_benchmarks_skip_with_reason_on_host(suite: str, tmp_path: Path) -> None:
    entry = next(r for r in load_suite(suite)["run"] if r["kind"] == "python")
    out = tmp_path / "bench.json"
    res = default_runner.run(
        [sys.executable, "-m", "pytest", entry["path"], *entry["args"], "-p", "no:cacheprovider",
         "-rs", f"--benchmark-json={out}"], cwd=ROOT, check=False, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " skipped" in res.stdout and " passed" not in res.stdout
    assert "ENOPKG" in res.stdout
