"""`./wb ci --shard I/N` and `./wb ci --merge DIR...`: one gate's rounds on several runners.

A shard builds every variant, boots its share of the design's rounds and writes a shard
directory: ``shard.json`` (this module owns its schema) and the run directories. The
merge checks that the shards measured the same thing (the *fingerprint*), takes their
runs into the runs directory and replays the gate's looks over the rounds in their
design order, so it decides exactly as one machine would have decided on those boots.

Rounds are dealt as whole ABBA pairs (rounds 0+1 to the first shard, 2+3 to the next...):
each pair runs on one host, so a round's pairing and the order's balance survive. No
shard knows what the others saw, so a shard cannot stop early: under ``--rounds auto`` it
boots its share of every look's rounds (``max_rounds``) within the time budget, and the
merge stops at the first look that decides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from watchbench.errors import InputError, ResultsError
from watchbench.flows.ci import (
    JUDGED,
    BenchFn,
    CiOptions,
    CiResult,
    KernelSource,
    Measurement,
    Variant,
    announce,
    check_rounds,
    compose,
    conclude,
    measure_until_decided,
    new_ci_id,
)
from watchbench.host.files import write_atomically
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.results import rundir
from watchbench.results.schema import Role
from watchbench.results.store import load_runs
from watchbench.settings import CiSettings, Judgement, Settings, field_of, rule_of
from watchbench.suite.run import run_bench
from watchbench.vm.qemu import Accel

SHARD_SCHEMA = 1
SHARD_FILE = "shard.json"
RUNS = "runs"

# What every run of every shard must agree on, and what only runs on one host may differ
# in: under tcg and kvm a timing depends on the host, under icount on the instructions.
# The user's extra boot parameters and kconfig additions are named on their own (they
# move the argv hash and maybe the config hash too), so a refusal says which one differs.
COMMON = ("accel", "arch", "qemu_version", "qemu_argv_hash", "compiler", "initramfs", "suite",
          "suite_hash", "kernel_args", "kconfig_add")
HOST_BOUND = ("host", "cpu_model")
PER_KERNEL = ("kernel_key", "tree_base", "series_hash", "dirty_hash", "config_hash")
# The design: shards of one gate must have been asked for the same one. Every ci setting
# but those a runner may choose for itself (``ruled(..., local=True)``: jobs, profile),
# whether the series is measured per patch, and the judgement.
SETTING_OF = {**{f.name: f"ci.{f.name}" for f in fields(CiSettings)},
              **{name: f"decision.{name}" for name in JUDGED}}  # design key -> its setting
DESIGN = (*(f.name for f in fields(CiSettings) if not f.metadata.get("local")), "per_patch",
          *JUDGED)
# A design key later shards record and earlier ones lack: its value before it existed.
DESIGN_SINCE = {"cache_model": "off"}


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (1 <= I <= N) as a user gives it."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise InputError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. 1/2")
    return int(found[1]), int(found[2])


def shard_rounds(total: int, index: int, count: int) -> list[int]:
    """The rounds (design indices) of shard ``index`` of ``count``: whole ABBA pairs,
    dealt in turn, so that each look's first rounds come from every shard."""
    pairs = [list(range(start, min(start + 2, total))) for start in range(0, total, 2)]
    if count > len(pairs):
        raise InputError(f"--shard {index}/{count}: {total} rounds make {len(pairs)} ABBA "
                         "pairs to deal out, fewer than the shards",
                         hint=f"use at most {len(pairs)} shards, or more --rounds")
    return [r for number, pair in enumerate(pairs) if number % count == index - 1 for r in pair]


def variant_key(variant: Variant | dict[str, Any]) -> str:
    """``role/patch_index``: how a shard record names a variant (a Variant or its record)."""
    if isinstance(variant, dict):
        return f"{variant['role']}/{variant['patch_index']}"
    return f"{variant.role}/{variant.patch_index}"


def design_of(options: CiOptions) -> dict[str, Any]:
    """The design as ``shard.json`` records it: plain values, the judgement's parts flat."""
    judged = {name: getattr(options.judgement, name) for name in JUDGED}
    values = {name: judged[name] if name in judged else getattr(options, name)
              for name in DESIGN}
    return {name: str(value) if isinstance(value, Enum) else value
            for name, value in values.items()}


@dataclass
class ShardResult:
    directory: Path
    index: int
    count: int
    rounds: list[int]  # design indices booted
    planned: list[int]
    boot_seconds: float
    stop_reason: str


def run_shard(settings: Settings, options: CiOptions, shard: str,
              runner: Runner = default_runner, progress: Progress | None = None,
              kernels: KernelSource | None = None, bench: BenchFn = run_bench) -> ShardResult:
    """Build every variant, boot this shard's rounds, write the shard directory
    (``options.out``/shard-I-of-N). No verdict: one shard has only part of the boots."""
    progress = progress or Silent()
    check_rounds(options)
    index, count = parse_shard(shard)
    total = options.rounds if options.rounds is not None else options.max_rounds
    planned = shard_rounds(total, index, count)
    directory = options.out / f"shard-{index}-of-{count}"
    if directory.exists():
        raise InputError(f"{directory} exists: a shard directory is written once",
                         hint="give another --out, or remove it")
    ci_id = new_ci_id()
    announce(progress, ci_id, f"shard {index}/{count} of {options.series or 'an A/A run'}",
             settings)
    measured, jobs = compose(settings, options, runner, progress, kernels)
    m = Measurement(settings, options, measured, runner, progress, ci_id, bench=bench,
                    jobs=jobs, plan=planned)
    seconds: list[float] = []
    stop = f"all {len(planned)} rounds of the shard"
    while m.rounds < len(planned):
        per_round = m.boot_seconds / max(m.rounds, 1)
        if options.rounds is None and m.rounds and m.boot_seconds + per_round > options.budget_s:
            stop = f"time budget {options.budget_s:.0f} s reached after {m.rounds} rounds"
            break
        before = m.boot_seconds
        m.run_round(str(len(planned)))
        seconds.append(m.boot_seconds - before)
    write_shard(directory, settings, m, index, count, planned, seconds, stop)
    progress.step(f"shard {index}/{count}: {m.rounds} rounds in {m.boot_seconds:.0f} s "
                  f"-> {directory}")
    return ShardResult(directory, index, count, planned[:m.rounds], planned, m.boot_seconds,
                       stop)


def fingerprint(manifests: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """The fields every run of a shard shares (COMMON, HOST_BOUND), checked to agree."""
    out: dict[str, Any] = {}
    for name in (*COMMON, *HOST_BOUND):
        values = {json.dumps(m.get(name)) for m in manifests}
        if len(values) > 1:
            raise ResultsError(f"{where}: the runs differ in {name}: {', '.join(sorted(values))}",
                               hint="a shard is one runner's boots of one setup; run it again")
        out[name] = manifests[0].get(name)
    return out


def write_shard(directory: Path, settings: Settings, m: Measurement, index: int, count: int,
                planned: list[int], seconds: list[float], stop: str) -> Path:
    """The shard directory, built aside and renamed into place whole."""
    staging = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / RUNS).mkdir(parents=True)
    manifests: list[dict[str, Any]] = []
    kernels: dict[str, dict[str, Any]] = {}
    for variant in m.variants:
        for run_id in variant.run_ids:
            shutil.copytree(settings.runs_dir / run_id, staging / RUNS / run_id)
            data = rundir.read_whole_manifest(staging / RUNS / run_id)
            manifests.append(data)
            kernels[variant_key(variant)] = {name: data.get(name) for name in PER_KERNEL}
    rounds = [{"round": planned[i], "seconds": round(seconds[i], 3),
               "runs": {variant_key(v): v.run_ids[i] for v in m.variants}}
              for i in range(m.rounds)]
    record = {
        "schema": SHARD_SCHEMA, "ci_id": m.ci_id, "index": index, "count": count,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "series": m.options.series, "design": design_of(m.options), "planned": planned,
        "stop_reason": stop,
        "variants": [{"role": str(v.role), "patch_index": v.patch_index,
                      "patch_subject": v.patch_subject} for v in m.variants],
        "rounds": rounds,
        "fingerprint": {**fingerprint(manifests, str(directory)), "kernels": kernels},
    }
    write_atomically(staging / SHARD_FILE, json.dumps(record, indent=2) + "\n")
    staging.rename(directory)
    return directory


# --- the merge ---------------------------------------------------------------------------


@dataclass
class Shard:
    directory: Path
    record: dict[str, Any]

    @property
    def name(self) -> str:
        return f"shard {self.record['index']}/{self.record['count']} ({self.directory})"


def find_shards(paths: list[Path]) -> list[Shard]:
    """Each path is a shard directory or holds some (a matrix job's downloaded artifacts)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / SHARD_FILE).is_file():
            found.append(path)
        elif path.is_dir() and (inner := sorted(p.parent for p in path.glob(f"*/{SHARD_FILE}"))):
            found += inner
        else:
            raise InputError(f"{path}: neither a shard directory nor one holding shards "
                             f"(no {SHARD_FILE})",
                             hint="give the --out directories of the shards: "
                                  "./wb ci --merge DIR,DIR...")
    return [Shard(path, read_shard(path)) for path in found]


def read_shard(directory: Path) -> dict[str, Any]:
    path = directory / SHARD_FILE
    hint = "run that shard again: ./wb ci --shard I/N --out DIR"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable shard record: {exc}", hint=hint) from exc
    schema = record.get("schema") if isinstance(record, dict) else None
    if schema != SHARD_SCHEMA:
        raise ResultsError(f"{path}: shard schema {schema!r}, expected {SHARD_SCHEMA}",
                           hint="merge with the watchbench that wrote it, or boot that "
                                "shard again: ./wb ci --shard I/N --out DIR")
    missing = [k for k in ("index", "count", "series", "design", "planned", "variants",
                           "rounds", "fingerprint") if k not in record]
    if missing:
        raise ResultsError(f"{path}: shard record lacks {', '.join(missing)}", hint=hint)
    if isinstance(record.get("design"), dict):  # written before a design key existed
        record["design"] = {**DESIGN_SINCE, **record["design"]}
    problem = record_problem(record)
    if problem:
        raise ResultsError(f"{path}: the shard record was changed or is corrupt: {problem}",
                           hint=hint)
    return record


RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a directory name, never a path
# The design's values, checked by the rules of the settings they came from (rounds is
# null for auto, or a number: checked on its own).
DESIGN_RULES = {name: SETTING_OF[name] for name in DESIGN if name in SETTING_OF
                and name != "rounds" and "rule" in field_of(SETTING_OF[name]).metadata}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def record_problem(record: dict[str, Any]) -> str:
    """What is wrong with a shard record's shape or values ("" if nothing): a merge
    trusts it to name run directories and to set how the gate judges."""
    index, count = record["index"], record["count"]
    if not (_is_int(index) and _is_int(count) and 1 <= index <= count):
        return f"index/count {index!r}/{count!r} is not I/N with 1 <= I <= N"
    if not isinstance(record["series"], str):
        return f"series {record['series']!r} is not a string"
    design = record["design"]
    if not isinstance(design, dict) or set(design) != set(DESIGN):
        return f"design must have exactly the keys {', '.join(DESIGN)}"
    for name, key in DESIGN_RULES.items():
        value = design[name]
        if isinstance(value, bool) or not rule_of(key).allows(value):
            return f"design.{name} {value!r} is not {rule_of(key).describe()}"
    rounds = design["rounds"]
    if rounds is not None and not (_is_int(rounds) and rule_of("ci.rounds").allows(rounds)):
        return f"design.rounds {rounds!r} is not null or >= 2"
    if not isinstance(design["per_patch"], bool) or not isinstance(design["suite"], str):
        return "design.per_patch must be true/false and design.suite a string"
    if not (isinstance(record["planned"], list) and all(_is_int(r) and r >= 0
                                                        for r in record["planned"])):
        return "planned must be a list of round numbers"
    variants = record["variants"]
    roles = {str(r) for r in Role}
    if not (isinstance(variants, list) and variants and all(
            isinstance(v, dict) and v.get("role") in roles and _is_int(v.get("patch_index"))
            and v["patch_index"] >= 0 and isinstance(v.get("patch_subject"), str)
            for v in variants)):
        return "variants must be a list of {role, patch_index, patch_subject}"
    keys = {variant_key(v) for v in variants}
    if not isinstance(record["rounds"], list):
        return "rounds must be a list"
    for done in record["rounds"]:
        if not (isinstance(done, dict) and _is_int(done.get("round")) and done["round"] >= 0
                and isinstance(done.get("seconds"), int | float)
                and not isinstance(done.get("seconds"), bool) and done["seconds"] >= 0
                and isinstance(done.get("runs"), dict) and set(done["runs"]) == keys):
            return f"round {done!r:.80} is not {{round, seconds, runs of every variant}}"
        bad = [r for r in done["runs"].values() if not (isinstance(r, str) and RUN_ID.match(r))]
        if bad:
            return f"run id {bad[0]!r:.60} is not a run directory name"
    fingerprint = record["fingerprint"]
    if not (isinstance(fingerprint, dict) and isinstance(fingerprint.get("host"), str)
            and isinstance(fingerprint.get("cpu_model"), str)):
        return "fingerprint must be a mapping with host and cpu_model"
    return ""


def _differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b))
                for d in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [(prefix.rstrip("."), a, b)]


def check_shards(shards: list[Shard]) -> None:
    """Refuse shards that are not the parts of one gate, naming the field that differs."""
    first = shards[0]
    count = first.record["count"]
    for shard in shards[1:]:
        kernels = [", ".join(map(variant_key, s.record["variants"])) for s in (first, shard)]
        if kernels[0] != kernels[1]:
            raise InputError(f"{shard.name} measured other kernels than {first.name}: "
                             f"{kernels[1]}, not {kernels[0]} (another series, or "
                             "--per-patch on one only)",
                             hint="merge the shards of one gate: ./wb ci --merge DIR,DIR...")
        for section in ("design", "variants"):
            for name, a, b in _differences(first.record[section], shard.record[section],
                                           f"{section}."):
                raise InputError(f"{shard.name} was asked for another gate than {first.name}: "
                                 f"{name} {b!r}, not {a!r}",
                                 hint="merge the shards of one gate: ./wb ci --merge DIR,DIR...")
        mine, theirs = first.record["fingerprint"], shard.record["fingerprint"]
        bound = () if first.record["design"]["accel"] == Accel.ICOUNT else HOST_BOUND
        for name, a, b in _differences(mine, theirs):
            if name in HOST_BOUND and name not in bound:
                continue  # icount counts instructions: another host gives the same figures
            why = ("under tcg and kvm a timing depends on its host" if name in HOST_BOUND
                   else "the shards did not measure the same thing")
            raise InputError(f"{shard.name} differs from {first.name} in {name}: "
                             f"{b!r}, not {a!r} ({why})",
                             hint="merge only shards of one setup; run the odd one again")
    indices = sorted(s.record["index"] for s in shards)
    if any(s.record["count"] != count for s in shards) or indices != list(range(1, count + 1)):
        seen = {s.record["index"] for s in shards}
        twice = sorted({i for i in indices if indices.count(i) > 1})
        missing = sorted(set(range(1, count + 1)) - seen)
        raise InputError(f"the merge needs shards 1..{count} once each: "
                         + "; ".join(filter(None, [
                             missing and f"missing {', '.join(map(str, missing))}",
                             twice and f"given twice {', '.join(map(str, twice))}",
                             any(s.record["count"] != count for s in shards)
                             and "some are of another count"])),
                         hint="download every shard's artifact (a failed shard job fails the "
                              "gate: run it again)")


def import_runs(settings: Settings, shards: list[Shard]) -> None:
    """Every shard's runs into the runs directory: all checked first (a corrupt one
    leaves the history untouched), each copied aside and renamed into place."""
    wanted: list[tuple[Path, str]] = []
    for shard in shards:
        ids = [run_id for r in shard.record["rounds"] for run_id in r["runs"].values()]
        load_runs(shard.directory / RUNS, run_ids=ids)  # raises, naming the bad file
        for r in shard.record["rounds"]:
            for key, run_id in r["runs"].items():
                data = rundir.read_whole_manifest(shard.directory / RUNS / run_id)
                role, index = key.split("/")
                if (data.get("ci_round"), data.get("ci_role"), data.get("patch_index")) != (
                        r["round"], role, int(index)):
                    raise ResultsError(f"{shard.directory / RUNS / run_id}: its manifest says "
                                       f"round {data.get('ci_round')} {data.get('ci_role')}, "
                                       f"the shard record round {r['round']} {key}",
                                       hint="the shard directory was changed; run it again")
                wanted.append((shard.directory / RUNS / run_id, run_id))
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    for source, run_id in wanted:
        target = settings.runs_dir / run_id
        if target.exists():
            if rundir.read_whole_manifest(target) != rundir.read_whole_manifest(source):
                raise ResultsError(f"{target} exists and is another run than {source}",
                                   hint="run ids are unique: one of the two was changed")
            continue
        staging = settings.runs_dir / f".{run_id}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        try:
            staging.rename(target)
        except OSError:  # another merge of the same shards took it in meanwhile
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise


@dataclass
class Replay(Measurement):
    """The shards' rounds, in design order, handed to the gate's looks as if booted now."""

    recorded: list[dict[str, Any]] = field(default_factory=list)

    def run_round(self, total: str) -> None:
        done = self.recorded[self.rounds]
        for variant in self.variants:
            variant.run_ids.append(done["runs"][variant_key(variant)])
        self.rounds += 1
        self.boot_seconds += done["seconds"]


def complete_rounds(shards: list[Shard]) -> list[dict[str, Any]]:
    """The rounds 0, 1, ... up to the first one no shard booted."""
    by_index = {r["round"]: r for s in shards for r in s.record["rounds"]}
    out = []
    while len(out) in by_index:
        out.append(by_index[len(out)])
    return out


def options_of(shard: dict[str, Any], **given: Any) -> CiOptions:
    """The gate's options as the shards were given them, then the merge's own (out...)."""
    design = shard["design"]
    return CiOptions(series=shard["series"], **{k: v for k, v in design.items() if k not in JUDGED},
                     judgement=Judgement(**{name: design[name] for name in JUDGED}), **given)


def run_merge(settings: Settings, paths: list[Path], out: Path, record: bool = False,
              accept_undecided: bool = False, progress: Progress | None = None) -> CiResult:
    """The verdict, report, summary and JUnit of the merged shards, as one machine's."""
    progress = progress or Silent()
    shards = find_shards(paths)
    check_shards(shards)
    options = options_of(shards[0].record, out=out, record=record,
                         accept_undecided=accept_undecided)
    rounds = complete_rounds(shards)
    looks = options.looks()
    if len(rounds) < looks.rounds[0]:
        raise InputError(f"the shards hold {len(rounds)} complete rounds; the first look "
                         f"needs {looks.rounds[0]}",
                         hint="a shard stopped early (see its stop_reason): run it again")
    ci_id = new_ci_id()
    announce(progress, ci_id, f"merge of {len(shards)} shards", settings, cache=False)
    import_runs(settings, shards)
    hosts = sorted({f"{s.record['fingerprint']['host']} ({s.record['fingerprint']['cpu_model']})"
                    for s in shards})
    progress.step(f"{len(shards)} shards, {len(rounds)} complete rounds, from "
                  f"{len(hosts)} host(s): {'; '.join(hosts)}")
    measured = [Variant(Role(v["role"]), v["patch_index"], v["patch_subject"], None)
                for v in shards[0].record["variants"]]
    replay = Replay(settings, options, measured, default_runner, progress, ci_id,
                    limit=len(rounds), recorded=rounds)
    comparisons, df, stop = measure_until_decided(replay)
    return conclude(settings, options, replay, comparisons, df, stop)
