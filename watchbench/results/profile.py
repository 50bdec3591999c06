"""Per-symbol instruction counts of a profiled boot: the plugin's file in, a tidy table out.

The plugin (``vm/wb-insns.c``) writes ``raw/insns.txt``: a ``P`` line when a program of
ours starts (``wq.c`` runs the marker from a constructor), then per region of interest
its blocks ``vaddr n_insns count other async`` (executions on the region's vCPU, on the
other vCPUs, inside interrupts). With its cache model on (``cache=on``) the file is
format 2: the same, plus the model's configuration and, on every line, the model's
events (``CACHE_EVENTS``) in the same three slots; both formats are read here. Each
record of a profiled measurement says which of its program's regions it timed and over
how many operations (``roi``: bench/RECORDS.md). This module pairs the two, maps the
blocks to functions and writes ``profile.parquet`` (its columns and schema version are
owned here). With the model on, every row also has the model's misses per op and
``est_cycles_per_op`` (``CostModel``): an estimate under a stated model, not a
measurement; ``cases`` gives it per case, for the tables and a gate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchbench.errors import ResultsError
from watchbench.host.files import write_atomically
from watchbench.kernel.symbols import SymbolMap
from watchbench.results.records import params_key, round_robin

INSNS_VERSION = 1  # "# wb-insns 1", the first line the plugin writes
CACHE_VERSION = 2  # "# wb-insns 2": the same with the cache model's counts (cache=on)
# The cache model's events, in the plugin's order: data references, I1 misses, D1 misses,
# LL misses of instruction fetches and of data references. Instruction references are
# the instructions themselves.
CACHE_EVENTS = ("dr", "i1", "d1", "lli", "lld")
CACHE_LEVELS = ("I1", "D1", "LL")
_SLOTS = 3  # count, other, async
PROFILE_SCHEMA = 2  # 2: the cache model's columns (empty in a schema 1 profile, read as 2)
PROFILE_FILE = "profile.parquet"
# The cache model's figures per op of a row, medians of the repeats' like instr_per_op:
# data references, I1, D1 and LL misses (LL: fetches and data together). NaN where the
# model was off. A model, not a measurement.
MISS_COLUMNS = ("dref_per_op", "i1_miss_per_op", "d1_miss_per_op", "ll_miss_per_op")
MODEL_COLUMNS = (*MISS_COLUMNS, "est_cycles_per_op", "case_est_cycles_per_op", "cost_model")
# One row per case and symbol: ``instr_per_op`` the median of its repeats' (``spread`` how
# far they lie apart), ``instructions`` and ``ops`` summed over them; then the model's.
PROFILE_COLUMNS = ("schema", "run_id", "benchmark", "params", "symbol", "instr_per_op",
                   "spread", "share", "instructions", "ops", "repeats", "case_instr_per_op",
                   "case_ns_per_op", "interleaved", *MODEL_COLUMNS)
# Where the counts come from, copied from the run's manifest into every row.
PROVENANCE = ("kernel_key", "tree_base", "series_hash", "config_hash", "accel", "qemu_version",
              "qemu_argv_hash", "host")
# The plugin's events summed per row (``ll``: ``lli`` + ``lld``), in MISS_COLUMNS' order.
_ROW_EVENTS = ("dr", "i1", "d1", "ll")
# Everything run inside interrupts, and on the other vCPU of a case without a reader there,
# in one row: asynchronous to the operation measured.
# ``case_instr_per_op`` and ``share`` are of the operation's own instructions, without it.
ASYNC = "[async]"


class ProfileError(ResultsError):
    """The plugin's counts and the records of a profiled boot do not fit together."""


@dataclass(frozen=True)
class CostModel:
    """What the cache model's counts are estimated to cost, in cycles: one per
    instruction, ``l1`` more per I1 or D1 miss, ``ll`` more per LL miss (which was an L1
    miss too: 110 in all). The weights of KCachegrind's cycle estimate (CEst, without
    its branch terms), within the Cachegrind manual's L1 miss "around 10 cycles" and LL
    miss "as much as 200" (docs/cache-model.md says why). A model, not a measurement: no overlap of misses, no
    pipeline, no prefetcher, no TLB. A later gate reads it per case (``cases``)."""

    l1: float = 10.0
    ll: float = 100.0

    def est_cycles(self, instructions: Any, i1: Any, d1: Any, ll: Any) -> Any:
        """Estimated cycles of these counts (numbers, arrays or Series alike)."""
        return instructions + self.l1 * (i1 + d1) + self.ll * ll

    def describe(self) -> str:
        """The formula, said in every row it produced (``cost_model``)."""
        return (f"model, not a measurement: est_cycles = instructions + {self.l1:g} * "
                f"(I1 + D1 misses) + {self.ll:g} * LL misses")


COST_MODEL = CostModel()


@dataclass
class CacheCounts:
    """The cache model's events of one region (format 2), keyed by ``CACHE_EVENTS``: per
    block on the region's vCPU and on the others, summed over everything asynchronous,
    like the instructions beside them."""

    count: dict[str, np.ndarray]
    other: dict[str, np.ndarray]
    async_events: dict[str, int]


@dataclass
class Region:
    """The blocks that ran between one begin and one end marker."""

    vaddr: np.ndarray
    insns: np.ndarray  # n_insns * executions on the region's vCPU, per block
    other: np.ndarray  # the same on the other vCPUs
    async_insns: int  # all instructions run inside interrupts
    cache: CacheCounts | None = None  # format 2 only


@dataclass
class Program:
    """What one program start (``P``) saw: its regions, in order."""

    regions: list[Region] = field(default_factory=list)


@dataclass
class Insns:
    programs: list[Program]
    unmatched_ends: int
    exited: bool
    # The cache model's levels (``CACHE_LEVELS``) as (size, associativity, line) in
    # bytes; None when the model was off (format 1).
    cache: dict[str, tuple[int, int, int]] | None = None


def _cache_config(line: str, path: Path) -> dict[str, tuple[int, int, int]]:
    """``C I1 <size> <assoc> <line> D1 ... LL ...``, the second line of format 2."""
    words = line.split()
    names = words[1::4]
    if words[:1] != ["C"] or len(words) != 13 or tuple(names) != CACHE_LEVELS:
        raise ProfileError(f"{path}: line 2 is not the cache model's configuration "
                           f"({line[:60]!r})", log=path)
    return {name: (int(words[k + 1]), int(words[k + 2]), int(words[k + 3]))
            for k, name in zip(range(1, 13, 4), names, strict=True)}


def _region_cache(table: np.ndarray, head: list[str], path: Path) -> CacheCounts:
    """The 15 event columns of a format 2 region (per event: count, other, async)."""
    events = table.astype(np.int64).reshape(len(table), len(CACHE_EVENTS), _SLOTS)
    sums = [int(v) for v in events.sum(axis=0).reshape(-1)]
    if sums != [int(h) for h in head]:
        raise ProfileError(f"{path}: a region's cache events sum to {sums}, its header "
                           f"says {head}", log=path)
    return CacheCounts(
        count={e: events[:, k, 0] for k, e in enumerate(CACHE_EVENTS)},
        other={e: events[:, k, 1] for k, e in enumerate(CACHE_EVENTS)},
        async_events={e: int(events[:, k, 2].sum()) for k, e in enumerate(CACHE_EVENTS)})


def cache_totals(region: Region) -> dict[str, int]:
    """A format 2 region's operation (its ``count`` slot) summed: instructions (``ir``),
    ``CACHE_EVENTS``, and LL misses of fetches and data together (``ll``)."""
    if region.cache is None:
        raise ProfileError("a format 1 region has no cache counts: the plugin ran without "
                           "cache=on")
    out = {"ir": int(region.insns.sum())}
    out.update({e: int(region.cache.count[e].sum()) for e in CACHE_EVENTS})
    out["ll"] = out["lli"] + out["lld"]
    return out


def read_insns(path: Path) -> Insns:
    """Parse the plugin's file, format 1 or 2; a torn last region (QEMU killed mid-write)
    is dropped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ProfileError(f"{path}: the plugin wrote no counts ({exc.strerror})",
                           hint="the guest log of this boot says why QEMU stopped") from exc
    if not lines or lines[0] not in (f"# wb-insns {INSNS_VERSION}",
                                     f"# wb-insns {CACHE_VERSION}"):
        raise ProfileError(f"{path}: not a wb-insns {INSNS_VERSION} file, nor a wb-insns "
                           f"{CACHE_VERSION} one "
                           f"(first line {lines[0] if lines else '(empty)'!r})", log=path)
    cache = None
    i = 1
    if lines[0] == f"# wb-insns {CACHE_VERSION}":
        if len(lines) < 2:
            return Insns([], 0, False, None)  # killed before its configuration
        cache = _cache_config(lines[1], path)
        i = 2
    width = 5 + (len(CACHE_EVENTS) * _SLOTS if cache else 0)
    programs: list[Program] = []
    unmatched, exited = 0, False
    while i < len(lines):
        head = lines[i].split()
        i += 1
        if head == ["P"]:
            programs.append(Program())
        elif head == ["X"]:
            unmatched += 1
        elif head and head[0] == "E":
            exited = True
        elif head and head[0] == "R" and len(head) == width:
            blocks = int(head[1])
            body = lines[i:i + blocks]
            i += blocks
            if len(body) < blocks or not programs:
                continue  # torn at the end, or before any program of ours
            rows = [ln.split() for ln in body]
            if any(len(r) != width for r in rows):
                if i >= len(lines):
                    continue  # its last line torn
                raise ProfileError(f"{path}: a region's block lines are not {width} "
                                   "columns wide", log=path)
            table = np.array(rows, dtype=object).reshape(-1, width)
            vaddr = np.array([int(v, 16) for v in table[:, 0]], dtype=np.uint64)
            size = table[:, 1].astype(np.int64)
            insns, other = size * table[:, 2].astype(np.int64), size * table[:, 3].astype(np.int64)
            async_insns = int((size * table[:, 4].astype(np.int64)).sum())
            sums = [int(insns.sum()), int(other.sum()), async_insns]
            if sums != [int(h) for h in head[2:5]]:
                raise ProfileError(f"{path}: a region of {blocks} blocks sums to {sums}, its "
                                   f"header says {head[2:5]}", log=path)
            events = _region_cache(table[:, 5:], head[5:], path) if cache else None
            programs[-1].regions.append(Region(vaddr, insns, other, async_insns, events))
        elif head and head[0] == "R" and i >= len(lines):
            continue  # a region's header line torn at the end (killed while writing it)
        else:
            raise ProfileError(f"{path}: line {i}: unexpected {lines[i - 1][:60]!r}", log=path)
    return Insns(programs, unmatched, exited, cache)


def _record_regions(record: dict, program: Program, where: str) -> list[Region]:
    roi = record["roi"]
    first, count = int(roi["first"]), int(roi["count"])
    if first < 0 or count < 1 or first + count > len(program.regions):
        raise ProfileError(f"{where}: record {record.get('benchmark')} {record.get('params')} "
                           f"claims regions {first}..{first + count - 1}, but the plugin saw "
                           f"{len(program.regions)} in this program")
    return program.regions[first:first + count]


def _events(regions: list[Region], interleaved: bool) -> dict[str, np.ndarray]:
    """The model's events of a record's regions, laid out as its instructions are: per
    block (the other vCPUs' blocks after, when the operation runs there too), then what
    was not the operation's, summed."""
    out = {}
    for name in _ROW_EVENTS:
        parts = ("lli", "lld") if name == "ll" else (name,)
        blocks = [sum(r.cache.count[p] for p in parts) for r in regions if r.cache]
        if interleaved:
            blocks += [sum(r.cache.other[p] for p in parts) for r in regions if r.cache]
        elsewhere = sum(r.cache.async_events[p] + (0 if interleaved else int(r.cache.other[p].sum()))
                        for r in regions if r.cache for p in parts)
        out[name] = np.append(np.concatenate(blocks), elsewhere)
    return out


def profile_table(insns: Insns, programs: Sequence[tuple[str, list[dict]]],
                  symbols: SymbolMap, run_id: str, where: Path,
                  cost: CostModel = COST_MODEL) -> pd.DataFrame:
    """Rows of PROFILE_COLUMNS; ``programs``: (run name, its records) of every program of
    ours the boot ran, in order (each started once, so each has one ``P``).

    A symbol's ``instr_per_op`` is its instructions over the case's repeats divided by
    their operations; ``spread`` is how far the repeats' own figures lie apart (0: every
    repeat ran the same instructions per op). What ran inside interrupts (a timer tick
    and its softirqs, an IPI), and on the other vCPU unless the case has its reader
    there, is not the operation's: it is one row, ``[async]``. With the cache model on
    (format 2), the model's misses are counted the same way and priced by ``cost``."""
    if len(insns.programs) != len(programs):
        raise ProfileError(f"{where}: the plugin saw {len(insns.programs)} program starts, the "
                           f"boot ran {len(programs)} programs of ours "
                           f"({', '.join(n for n, _ in programs)})",
                           hint="was a program killed, or a program without wq.c added?",
                           log=where)
    parts = []
    for (name, records), program in zip(programs, insns.programs, strict=True):
        for record in records:
            if record.get("status") != "ok" or "roi" not in record:
                continue
            regions = _record_regions(record, program, f"{where} ({name})")
            # On the other vCPUs the operation runs only where it has a reader there.
            interleaved = round_robin(record["params"])
            vaddr = np.concatenate([r.vaddr for r in regions] * (1 + interleaved))
            insns_ = [r.insns for r in regions] + ([r.other for r in regions] if interleaved else [])
            elsewhere = sum(r.async_insns + (0 if interleaved else int(r.other.sum()))
                            for r in regions)
            parts.append(pd.DataFrame({
                "benchmark": record["benchmark"], "params": params_key(record["params"]),
                "symbol": np.append(symbols.names_of(vaddr), ASYNC),
                "instructions": np.append(np.concatenate(insns_), elsewhere),
                "record": len(parts), "ops": int(record["roi"]["ops"]),
                "ns": float((record.get("totals") or {}).get("ns", np.nan)),
                "interleaved": interleaved,
                **(_events(regions, interleaved) if insns.cache else {})}))
    if not parts:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    model = ""
    if insns.cache:
        caches = " ".join(f"{n} {':'.join(map(str, v))}" for n, v in insns.cache.items())
        model = f"{cost.describe()}; caches {caches}"
    return _per_case(pd.concat(parts, ignore_index=True), run_id, cost, model)


def _per_op(case: pd.DataFrame, value: str, ops: np.ndarray, columns: pd.Index
            ) -> tuple[pd.Series, pd.Series, pd.Series, float]:
    """One count of a case per symbol: its median per op over the repeats, their spread,
    its total, and what the repeats ran in all per op (their mean)."""
    grid = case.pivot_table(index="symbol", columns="record", values=value,
                            aggfunc="sum", fill_value=0).reindex(columns=columns, fill_value=0)
    per_op = grid / ops
    return (per_op.median(axis=1), per_op.max(axis=1) - per_op.min(axis=1), grid.sum(axis=1),
            float((grid.sum() / ops).mean()))


def _per_case(rows: pd.DataFrame, run_id: str, cost: CostModel = COST_MODEL,
              model: str = "") -> pd.DataFrame:
    events = [e for e in _ROW_EVENTS if e in rows.columns]
    tables = []
    for (benchmark, params), case in rows.groupby(["benchmark", "params"], sort=True):
        records = case.groupby("record").agg(ops=("ops", "first"), ns=("ns", "first"))
        # symbol x record; a symbol a repeat never ran is 0 there, not missing.
        ops = records["ops"].to_numpy()
        median, spread, total, ran = _per_op(case, "instructions", ops, records.index)
        table = pd.DataFrame({"instructions": total, "spread": spread, "instr_per_op": median})
        own = table.index != ASYNC
        op_total = float(table.loc[own, "instr_per_op"].sum())
        # What the repeats ran beyond the medians is asynchronous too (a preemption).
        table.loc[ASYNC, "instr_per_op"] = ran - op_total
        for event, column in zip(_ROW_EVENTS, MISS_COLUMNS, strict=True):
            if event in events:
                median, _, _, ran = _per_op(case, event, ops, records.index)
                table[column] = median.reindex(table.index)
                table.loc[ASYNC, column] = ran - float(table.loc[own, column].sum())
        table = table.fillna(0.0)
        tables.append(table.reset_index(names="symbol").assign(
            benchmark=benchmark, params=params, ops=int(ops.sum()), repeats=len(records),
            case_instr_per_op=op_total,
            case_ns_per_op=float(records["ns"].sum() / records["ops"].sum()),
            interleaved=bool(case["interleaved"].iloc[0])))
    table = pd.concat(tables, ignore_index=True)
    table["share"] = table["instr_per_op"] / table["case_instr_per_op"]
    table["instructions"] = table["instructions"].astype(np.int64)
    table = with_estimate(table, cost, model if events else "")
    table["schema"] = PROFILE_SCHEMA
    table["run_id"] = run_id
    table = table.sort_values(["benchmark", "params", "instr_per_op"],
                              ascending=[True, True, False])
    return table[list(PROFILE_COLUMNS)].reset_index(drop=True)


def with_estimate(table: pd.DataFrame, cost: CostModel = COST_MODEL,
                  model: str = "") -> pd.DataFrame:
    """``table`` with ``est_cycles_per_op`` per row (``cost`` over its instructions and
    misses per op) and ``case_est_cycles_per_op``, the sum over the case's own rows
    (``[async]`` apart, as for ``case_instr_per_op``); NaN without the model's counts
    (``model`` "": the model was off, and the misses are NaN too)."""
    out = table.copy()
    for column in MISS_COLUMNS:
        if column not in out.columns or not model:
            out[column] = np.nan
    out["est_cycles_per_op"] = cost.est_cycles(out["instr_per_op"], out["i1_miss_per_op"],
                                               out["d1_miss_per_op"], out["ll_miss_per_op"])
    own = out["est_cycles_per_op"].where(out["symbol"] != ASYNC, 0.0)
    sums = own.groupby([out["benchmark"], out["params"]]).transform("sum", min_count=1)
    out["case_est_cycles_per_op"] = sums if model else np.nan
    out["cost_model"] = model
    return out


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.startswith("{")]


def write_profile(run_dir: Path, table: pd.DataFrame) -> Path:
    path = Path(run_dir) / PROFILE_FILE
    return write_atomically(path, table.to_parquet(index=False))


def read_profile(run_dir: Path) -> pd.DataFrame:
    """A run's profile table, checked against this code's schema."""
    path = Path(run_dir) / PROFILE_FILE
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{path}: no readable profile ({exc})",
                           hint="profile the kernel with `./wb profile`") from exc
    if len(table) and set(table["schema"]) == {1}:
        # Schema 1 predates the cache model: the same rows, without the model's counts.
        table = with_estimate(table.assign(schema=PROFILE_SCHEMA))
    missing = [c for c in PROFILE_COLUMNS if c not in table.columns]
    if missing or (len(table) and set(table["schema"]) != {PROFILE_SCHEMA}):
        raise ProfileError(f"{path}: profile schema {sorted(set(table.get('schema', [])))}, "
                           f"this code reads {PROFILE_SCHEMA} (missing: {missing})", log=path)
    return table


def cases(table: pd.DataFrame) -> pd.DataFrame:
    """One row per case: the operation's instructions per op, the asynchronous ones, their
    sum (all the region ran) and the same boot's icount ``ns_per_op``, which counts the
    same instructions plus the clock reads just outside the markers. With the cache model:
    the operation's misses per op (MISS_COLUMNS) and ``est_cycles_per_op``, the model's
    estimate (``cost_model`` says which); NaN without it. What a gate on the estimate
    reads, per case."""
    key = ["benchmark", "params"]
    first = table.drop_duplicates(key).set_index(key)
    extra = table[table["symbol"] == ASYNC].set_index(key)["instr_per_op"]
    own = table[table["symbol"] != ASYNC]
    misses = own.groupby(key)[list(MISS_COLUMNS)].sum(min_count=1).reindex(first.index)
    out = pd.DataFrame({"instr_per_op": first["case_instr_per_op"],
                        "async_per_op": extra.reindex(first.index).fillna(0.0),
                        "ns_per_op": first["case_ns_per_op"], "ops": first["ops"],
                        "repeats": first["repeats"], "interleaved": first["interleaved"],
                        **{c: misses[c] for c in MISS_COLUMNS},
                        "est_cycles_per_op": first["case_est_cycles_per_op"],
                        "cost_model": first["cost_model"]})
    out["total_per_op"] = out["instr_per_op"] + out["async_per_op"]
    return out.reset_index()


# The cache model's estimate as a metric of the results table (``model_rows``): one row
# per profiled case and boot, primary (so that a gate over those boots decides it with the
# instructions, in one family) and said to be a model by its source, unit and raw_file.
MODEL_METRIC = "est_cycles_per_op"
MODEL_SOURCE = "model"  # not "c" nor "kernel": no program measured it
MODEL_UNIT = "cycles (model)"


def model_rows(run_dir: Path, params: dict[tuple[str, str], dict]) -> list[dict[str, Any]]:
    """The results rows of a run's profile taken with the cache model: per case its
    ``est_cycles_per_op`` (direction lower, primary); none without a profile or without
    the model. ``params``: each case's params as its records gave them ((benchmark,
    params key) -> params), for the results' ``param_*`` columns."""
    if not (Path(run_dir) / PROFILE_FILE).exists():
        return []
    every = cases(read_profile(run_dir))
    every = every[every["cost_model"].astype(str) != ""]
    return [{"benchmark": row.benchmark, "source": MODEL_SOURCE, "params": row.params,
             "param_values": params.get((row.benchmark, row.params), {}), "count_values": {},
             "iteration": None, "loops": int(row.ops), "status": "ok",
             "raw_file": PROFILE_FILE, "metric": MODEL_METRIC, "unit": MODEL_UNIT,
             "direction": "lower", "value": float(row.est_cycles_per_op), "primary": True,
             "reason": ""}
            for row in every.itertuples() if np.isfinite(row.est_cycles_per_op)]


def load_profiles(runs_dir: Path, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored profile (of ``run_ids``, if given) as one table, provenance included:
    the profiles' side of the results store."""
    dirs = sorted(p.parent for p in Path(runs_dir).glob(f"*/{PROFILE_FILE}"))
    if run_ids is not None:
        wanted = set(run_ids)
        missing = wanted - {d.name for d in dirs}
        if missing:
            raise ProfileError(f"{runs_dir}: no profile for run(s) {', '.join(sorted(missing))}",
                               hint="profile a kernel with `./wb profile` or `./wb bench "
                                    "--profile`")
        dirs = [d for d in dirs if d.name in wanted]
    tables = [read_profile(d) for d in dirs]
    if not tables:
        return pd.DataFrame(columns=[*PROFILE_COLUMNS, *PROVENANCE])
    return pd.concat(tables, ignore_index=True)
