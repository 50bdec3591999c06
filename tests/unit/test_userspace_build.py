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
import re
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
# What is tested is read from where a benchmark is declared (userspace/programs.toml, the
# suites and the programs' own sources), so that adding one edits no table here.
PROGRAMS: dict[str, Any] = tomllib.loads((USERSPACE / "programs.toml").read_text())["programs"]
BENCHMARKS = sorted(n for n, p in PROGRAMS.items() if p["kind"] == "benchmark")
SUITE_NAMES = sorted(p.stem for p in SUITES.glob("*.toml"))
# The records a program writes: wq_rec_init(r, "BENCHMARK", "SOURCE") in its sources.
REC_INIT = re.compile(r'wq_rec_init\(\s*\w+\s*,\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)')
# The records a Python benchmark writes: "benchmark": "NAME" in its extra_info.
PY_BENCHMARK = re.compile(r'"benchmark"\s*:\s*"([^"]+)"')


def load_suite(name: str) -> dict[str, Any]:
    return tomllib.loads((SUITES / f"{name}.toml").read_text())


def declared_records(program: str) -> dict[str, str]:
    """Benchmark name -> source of the records ``program``'s own sources initialise."""
    return dict(m.groups() for s in PROGRAMS[program]["sources"]
                for m in REC_INIT.finditer((USERSPACE / s).read_text()))


# Every C run of every suite: each benchmark program with each set of arguments it is run with.
C_RUNS = [pytest.param(r, id=f"{suite}-{r['name']}")
          for suite in SUITE_NAMES for r in load_suite(suite)["run"] if r["kind"] == "c"]


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


def asked_values(args: list[str]) -> dict[str, list[str]]:
    """The options given several values (``--queues 1,2``): what configurations multiply over."""
    return {flag: value.split(",") for flag, value in zip(args, args[1:], strict=False)
            if flag.startswith("--") and "," in value}


def grid_problems(params: list[dict[str, Any]], args: list[str]) -> list[str]:
    """Why ``params`` (one per record) are not one record per configuration ``args`` ask for.

    Each option given several values is a dimension: the param that holds all of them (the
    one with fewest other values). A record whose param holds a value not asked is outside
    that dimension (keyctl-post's baseline has ``queues`` 0: it watches no queue). The records
    inside the same dimensions are each configuration once, the full product of their
    values; a record may be outside a dimension only where no record inside it has the
    same values otherwise. So a configuration missing, repeated or never asked for, or a
    value asked for and never measured, is found without a count per program. Not found:
    a case that leaves a dimension out entirely (its rows fewer, yet a grid of their own)."""
    rows = [{k: str(v) for k, v in p.items()} for p in params]
    keys = sorted({k for p in rows for k in p})
    dims: dict[str, set[str]] = {}
    problems = []
    for flag, values in asked_values(args).items():
        wanted = set(values)
        held = {k: {p[k] for p in rows if k in p} for k in keys if k not in dims}
        fits = sorted((len(seen - wanted), k) for k, seen in held.items() if wanted <= seen)
        if not fits:
            problems.append(f"{flag} {','.join(values)}: no param holds every value asked")
            continue
        dims[fits[0][1]] = wanted
    groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for p in rows:
        inside = tuple(k for k in sorted(dims) if p.get(k) in dims[k])
        groups.setdefault(inside, []).append(tuple(p[k] for k in inside))
    for inside, points in groups.items():
        full = math.prod(len({pt[i] for pt in points}) for i in range(len(inside)))
        if len(set(points)) != len(points):
            problems.append(f"{inside}: a configuration is there more than once")
        elif len(points) != full:
            problems.append(f"{inside}: {len(points)} configurations of a grid of {full}")
    for inside, points in groups.items():
        for wider, theirs in groups.items():
            if set(inside) < set(wider):
                shown = {tuple(pt[wider.index(k)] for k in inside) for pt in theirs}
                if shown & set(points):
                    problems.append(f"{sorted(set(wider) - set(inside))} left out of "
                                    f"{sorted(shown & set(points))}, where it applies")
    return problems


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
@pytest.mark.parametrize("entry", C_RUNS)
def test_benchmark_emits_skipped_records_on_host(built: dict[str, Path],
                                                 entry: dict[str, Any]) -> None:
    """With a suite's own arguments: one skipped record per configuration asked for, named
    as the suite and the program's sources declare."""
    res = run(built[entry["program"]], *entry["args"])
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    non_json = [ln for ln in res.stdout.splitlines() if ln and not ln.startswith("{")]
    assert not non_json, f"stdout must be JSON Lines only: {non_json}"
    assert recs
    declared = declared_records(entry["program"])
    assert set(entry["benchmarks"]) <= set(declared), declared
    assert {r["benchmark"] for r in recs} == set(entry["benchmarks"])
    for rec in recs:
        assert declared[rec["benchmark"]] in ("c", "kernel")
        check_record(rec, rec["benchmark"], declared[rec["benchmark"]])
        assert rec["status"] == "skipped"
        assert "ENOPKG" in rec["reason"] and "O_NOTIFICATION_PIPE" in rec["reason"]
    # Each configuration appears exactly once, and every one asked for appears.
    keys = {json.dumps(r["params"], sort_keys=True) for r in recs}
    assert len(keys) == len(recs)
    assert grid_problems([r["params"] for r in recs], entry["args"]) == []


def _keyctl_like(queues: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    """keyctl-post's configurations: a baseline without queues, three cases per queue count."""
    return [{"case": "baseline", "queues": 0, "reader": "none"}] + [
        {"case": c, "queues": q, "reader": "other-cpu"}
        for c in ("stream", "overflow", "filtered") for q in queues]


KEYCTL_ARGS = ["--iterations", "10", "--cases", "baseline,stream,overflow,filtered",
               "--queues", "1,2", "--queue-size", "256"]


def test_grid_accepts_every_configuration_once() -> None:
    assert grid_problems(_keyctl_like(), KEYCTL_ARGS) == []
    kernel = [{"case": c, "queues": q, "len": n} for c in ("free", "filtered")
              for q in (1, 2) for n in (16, 127)] + [
        {"case": "none", "queues": 0, "len": n} for n in (16, 127)]
    assert grid_problems(kernel, ["--cases", "free,filtered,none", "--queues", "1,2",
                                  "--lengths", "16,127", "--queue-size", "256"]) == []


@pytest.mark.parametrize("params, why", [
    (_keyctl_like()[:-1], "of a grid of"),  # filtered, queues 2 missing
    (_keyctl_like() + _keyctl_like()[-1:], "more than once"),
    (_keyctl_like((1,)), "no param holds every value"),  # --queues 2 never measured
    (_keyctl_like((1, 2, 4)), "left out of"),  # queues 4 never asked for
    ([p for p in _keyctl_like() if p["case"] != "overflow"], "no param holds every value"),
    (_keyctl_like() + [{"case": "baseline", "queues": 3, "reader": "none"}], "more than once"),
])
def test_grid_finds_what_a_count_would(params: list[dict[str, Any]], why: str) -> None:
    assert any(why in problem for problem in grid_problems(params, KEYCTL_ARGS))


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


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_suite_schema(suite: str) -> None:
    data = load_suite(suite)
    assert data["suite"]["name"] == suite
    assert data["suite"]["budget_s"] > 0
    runs = data["run"]
    assert runs[0]["kind"] == "conformance", "conformance must run first"
    names = [r["name"] for r in runs]
    assert len(names) == len(set(names))
    for r in runs:
        assert r["kind"] in ("c", "python", "conformance")
        assert isinstance(r["args"], list) and all(isinstance(a, str) for a in r["args"])
        if r["kind"] == "python":
            assert (ROOT / r["path"]).exists() and r["path"].startswith("userspace/")
            files = sorted((ROOT / r["path"]).rglob("*.py"))
            written = {m for f in files for m in PY_BENCHMARK.findall(f.read_text())}
            assert set(r["benchmarks"]) == written, f"{r['name']}: the files write {written}"
        else:
            kind = "conformance" if r["kind"] == "conformance" else "benchmark"
            assert PROGRAMS[r["program"]]["kind"] == kind, r["program"]
        if r["kind"] != "conformance":
            assert r["benchmarks"] and len(set(r["benchmarks"])) == len(r["benchmarks"])
    if suite == "quick":
        assert data["suite"]["budget_s"] <= 60


def _covered(suite: str) -> tuple[set[str], set[str]]:
    """The benchmark programs a suite runs and the benchmarks it records."""
    runs = load_suite(suite)["run"]
    return ({r["program"] for r in runs if r["kind"] == "c"},
            {b for r in runs for b in r.get("benchmarks", [])})


def test_quick_and_full_run_every_benchmark() -> None:
    """Every benchmark program of programs.toml is smoke-run and measured, the same
    benchmarks in both; the gate's suite runs only some of them."""
    quick, full, ci = _covered("quick"), _covered("full"), _covered("ci")
    assert quick[0] == full[0] == set(BENCHMARKS)
    assert quick[1] == full[1]
    assert ci[1] <= full[1]


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
