"""A/B comparisons of the results table, boot by boot.

Pure functions over DataFrames, nothing else. ``compare_frames`` turns two sets of runs
into one boot per row (``boot_table``) and hands each metric to the one decision
function, ``stats.decision.decide`` (its docstring says why the boot is the unit).
``stats.summary`` describes one side the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from watchbench.errors import ResultsError
from watchbench.results.schema import LEGACY_PRIMARY, MATCH_KEYS, USER_ADDED
from watchbench.settings import JUDGEMENT, Judgement
from watchbench.stats.decision import Verdict, decide, noise_figures


class ComparisonError(ResultsError):
    """Two sets of samples are not comparable (different accelerator, params, metric...)."""


def _check_runs(df: pd.DataFrame, baseline: list[str], candidate: list[str]) -> None:
    known = set(df["run_id"].unique())
    for side, ids in (("baseline", baseline), ("candidate", candidate)):
        if not ids:
            raise ComparisonError(f"no {side} runs given", hint="name at least one run per side")
        missing = [r for r in ids if r not in known]
        if missing:
            raise ComparisonError(f"{side} runs not loaded: {', '.join(missing)}",
                                  hint="check the run ids (the directory names under runs/)")
    both = set(baseline) & set(candidate)
    if both:
        raise ComparisonError(f"runs on both sides: {', '.join(sorted(both))}")
    accels = {side: sorted(map(str, df.loc[df["run_id"].isin(ids), "accel"].unique()))
              for side, ids in (("baseline", baseline), ("candidate", candidate))}
    if len(set(accels["baseline"]) | set(accels["candidate"])) != 1:
        raise ComparisonError(
            f"runs use different accelerators (baseline: {', '.join(accels['baseline'])}; "
            f"candidate: {', '.join(accels['candidate'])}): their timings are not comparable",
            hint="compare runs taken with the same accel (kvm, tcg or icount)",
        )
    for name in USER_ADDED:
        _check_same(df, baseline, candidate, name)


# What each of USER_ADDED is, in a refusal (the option that sets it).
_ADDED_BY = {"kernel_args": "extra boot parameters (--kernel-args)",
             "kconfig_add": "kconfig additions (--kconfig-add)"}


def _check_same(df: pd.DataFrame, baseline: list[str], candidate: list[str], name: str) -> None:
    """Refuse runs that differ in what the user added to the boot or the configuration
    (a run from before it was recorded had none)."""
    if name not in df.columns:
        return
    sides = {}
    for side, ids in (("baseline", baseline), ("candidate", candidate)):
        values = df.loc[df["run_id"].isin(ids), name].astype("string").fillna("")
        sides[side] = sorted(set(values))
    if len(set(sides["baseline"]) | set(sides["candidate"])) > 1:
        said = {side: "; ".join(repr(v) if v else "none" for v in values)
                for side, values in sides.items()}
        raise ComparisonError(
            f"runs differ in {name}, their {_ADDED_BY[name]} (baseline: {said['baseline']}; "
            f"candidate: {said['candidate']}): they measured other kernels or boots",
            hint=f"compare runs taken with the same {name} (each run's manifest.json says "
                 "it); the run ids: ./wb runs",
        )


COMPARISON_COLUMNS = [
    *MATCH_KEYS, "unit", "direction", "accel", "primary", "gated", "n_a", "n_b", "rounds",
    "paired", "median_a", "median_b", "change", "ci_low", "ci_high", "p_value", "p_adjusted",
    "level", "mde", "between_cv", "within_cv", "n_eff", "repeats", "verdict", "reason",
    "decided_at",
]
_BOOT_KEYS = ["side", "run_id", *MATCH_KEYS]


def primary_flags(df: pd.DataFrame) -> pd.Series:
    """Which rows hold a benchmark's primary (gated) metric: the record's own flag, or
    for old results without one, ``LEGACY_PRIMARY``."""
    if "primary" in df.columns:
        return df["primary"].astype("boolean").fillna(False).astype(bool)
    return df["metric"].astype("string").isin(LEGACY_PRIMARY).fillna(False).astype(bool)


_BOOT_COLUMNS = [*_BOOT_KEYS, "log_median", "log_sd", "repeats", "unit", "direction", "accel",
                 "primary", "pair"]


def boot_table(df: pd.DataFrame, sides: dict[str, list[str]], *,
               boots: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per boot (run) and metric: median and SD of log values over its repeats.

    Columns: side, run_id, benchmark, params, metric, log_median, log_sd, repeats, unit,
    direction, accel, primary, pair (the run's ``ci_id``/``ci_round``, or NA). Metrics
    with a non-positive value in a boot have no log: their ``log_median`` is NaN.
    ``boots``: these rows already made (``boot_table(df, {"all": ids})`` over a superset
    of the runs), so many comparisons of one frame reduce its samples once.
    """
    side_of = {r: s for s, ids in sides.items() for r in ids}
    if boots is not None:
        mine = boots[boots["run_id"].isin(list(side_of))]
        mine = mine.assign(side=mine["run_id"].map(side_of))
        return mine.sort_values(_BOOT_KEYS, kind="stable").reset_index(drop=True)[
            _BOOT_COLUMNS]
    # Only the columns read below: a filter copies every column it keeps.
    wanted = ["run_id", *MATCH_KEYS, "unit", "direction", "accel", "value", "primary",
              "ci_round", "ci_id"]
    usable = (df["status"] == "ok") & df["value"].notna() & df["run_id"].isin(list(side_of))
    ok = df.loc[usable, [c for c in wanted if c in df.columns]]
    cols = _BOOT_COLUMNS
    if ok.empty:
        return pd.DataFrame(columns=cols)
    values = ok["value"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
    if "ci_round" in ok.columns:
        rounds = pd.to_numeric(ok["ci_round"], errors="coerce").astype("Int64")
        ci_ids = (ok["ci_id"].astype("string").fillna("") if "ci_id" in ok.columns
                  else pd.Series("", index=ok.index, dtype="string"))
        pair = (ci_ids + "#" + rounds.astype("string")).where(rounds.notna()).to_numpy()
    else:
        pair = pd.Series(pd.NA, index=ok.index, dtype="string").to_numpy()
    # Group on integer codes and turn only one row per boot and metric into text: a
    # million-row report calls this for every look and patch step.
    codes = ok.groupby(["run_id", *MATCH_KEYS], observed=True, sort=False,
                       dropna=False).ngroup().to_numpy()
    heads = ok.iloc[np.unique(codes, return_index=True)[1]]
    frame = pd.DataFrame({"code": codes, "log": logs, "_nan": np.isnan(logs),
                          "primary": primary_flags(ok).to_numpy(), "pair": pair})
    grouped = frame.groupby("code", sort=True)
    agg = grouped.agg(log_median=("log", "median"), _nan=("_nan", "any"),
                      log_sd=("log", "std"), repeats=("log", "size"),
                      primary=("primary", "max"), pair=("pair", "first"))
    text = {k: heads[k].astype(str).to_numpy() for k in
            ("run_id", *MATCH_KEYS, "unit", "direction", "accel")}
    out = pd.DataFrame({"side": pd.Series(text["run_id"]).map(side_of).to_numpy(), **text,
                        **{c: agg[c].to_numpy() for c in agg.columns}})
    # A boot with a log-less value (<= 0) has no log median: NaN marks it, not skipped.
    out.loc[out["_nan"].astype(bool), "log_median"] = np.nan
    out = out.sort_values(_BOOT_KEYS, kind="stable").reset_index(drop=True)
    return out[cols]


def _problems(df: pd.DataFrame, run_ids: list[str]) -> dict[tuple[str, str], list[str]]:
    """Per (benchmark, params): the distinct ``status: reason`` of its non-ok records."""
    bad = df.loc[(df["status"] != "ok") & df["run_id"].isin(run_ids),
                 ["benchmark", "params", "status", "reason"]]
    out: dict[tuple[str, str], list[str]] = {}
    for b, p, s, r in bad.astype(str).itertuples(index=False):
        text = f"{s}: {r}"
        out.setdefault((b, p), [])
        if text not in out[(b, p)]:
            out[(b, p)].append(text)
    return out


def _pairs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The two sides' boot log medians, paired by round when every boot has a unique one."""
    keyed = all(not pd.isna(p["pair"]).any() and len(set(p["pair"])) == len(p["pair"])
                for p in (a, b))
    if keyed:
        # In round order (the key ends in #round): the same order whether the rounds came
        # from one machine or from shards with ci ids of their own, so the sums agree.
        common = sorted(set(a["pair"]) & set(b["pair"]),
                        key=lambda p: (int(p.rsplit("#", 1)[1]), p))
        if len(common) >= 2:
            xa, xb = ({p: i for i, p in enumerate(side["pair"])} for side in (a, b))
            return (a["log_median"][[xa[p] for p in common]],
                    b["log_median"][[xb[p] for p in common]], True)
    return a["log_median"], b["log_median"], False


def _failure(key: tuple[str, str, str], boots: dict[str, dict[str, np.ndarray]],
             runs: dict[str, list[str]],
             problems: dict[str, dict[tuple[str, str], list[str]]]) -> tuple[str, str] | None:
    """(verdict, reason) when a benchmark broke on a side, else None (fail closed)."""
    trouble = {}
    for side in ("baseline", "candidate"):
        have = set(boots[side]["run_id"]) if side in boots else set()
        missing = [r for r in runs[side] if r not in have]
        notes = list(problems[side].get(key[:2], []))
        if missing:
            notes.append(f"no {key[2]} sample in {len(missing)} of {len(runs[side])} boot(s)")
        if notes:
            trouble[side] = "; ".join(notes)
    if "candidate" in trouble and "baseline" not in trouble:
        return Verdict.FAILED, f"candidate: {trouble['candidate']} (the baseline measured it)"
    if "candidate" in trouble:
        return (Verdict.UNDECIDED, f"broken on both sides: baseline: {trouble['baseline']}; "
                f"candidate: {trouble['candidate']}")
    if "baseline" in trouble and "baseline" not in boots:
        return Verdict.UNDECIDED, f"only the candidate measured it (baseline: {trouble['baseline']})"
    return None


def compare_frames(
    df: pd.DataFrame,
    baseline_run_ids: list[str],
    candidate_run_ids: list[str],
    *,
    judgement: Judgement = JUDGEMENT,
    spend: float | None = None,
    boots: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One decision row per benchmark/params/metric between two sets of boots, each
    decided by ``judgement`` (threshold, family-wise alpha, noise floor).

    Each boot is one independent observation (``boot_table``); rounds are paired when the
    runs carry ``ci_round``. ``spend`` is the part of the family's ``alpha`` this look may
    use (default: all of it, a single look); every metric is decided at ``spend / m``
    with ``m`` the number of gated metrics (primary metrics the baseline measured), so the
    family-wise false-alarm rate over the gated metrics stays at most ``alpha``. A
    benchmark that broke or went missing on the candidate only is FAILED. Raises
    ComparisonError when the runs are unknown, overlap, or used different accelerators.
    ``boots``: the boot rows already made (``boot_table``), as for many comparisons.
    """
    _check_runs(df, baseline_run_ids, candidate_run_ids)
    runs = {"baseline": list(baseline_run_ids), "candidate": list(candidate_run_ids)}
    boots = boot_table(df, runs, boots=boots)
    problems = {s: _problems(df, ids) for s, ids in runs.items()}
    # Each boot's figures as plain arrays per metric and side: a look decides tens of
    # metrics, and frame slices cost far more than the numbers they hold.
    columns = {c: boots[c].to_numpy() for c in ("run_id", "unit", "direction", "accel",
                                                "primary", "pair")}
    columns.update({c: boots[c].to_numpy(float) for c in ("log_median", "log_sd",
                                                          "repeats")})
    by_key: dict[tuple, dict[str, dict[str, np.ndarray]]] = {}
    groups = boots.groupby(["side", *MATCH_KEYS], sort=True).indices
    for (side, *key), index in sorted(groups.items()):
        by_key.setdefault(tuple(key), {})[side] = {c: v[index] for c, v in columns.items()}
    gated = {k for k, s in by_key.items() if "baseline" in s and bool(s["baseline"]["primary"].any())}
    threshold, alpha, noise_floor = judgement.threshold, judgement.alpha, judgement.noise_floor
    family = max(len(gated), 1)
    spent = alpha if spend is None else spend
    level = spent / family
    empty = {c: v[:0] for c, v in columns.items()}
    rows = []
    for key in sorted(by_key):
        sides = by_key[key]
        present = sides.get("baseline", sides.get("candidate"))
        row: dict = {**dict(zip(MATCH_KEYS, key, strict=True)), "unit": present["unit"][0],
                     "direction": present["direction"][0], "accel": present["accel"][0],
                     "primary": bool(present["primary"].any()), "gated": key in gated,
                     "n_a": len(sides.get("baseline", {}).get("run_id", ())),
                     "n_b": len(sides.get("candidate", {}).get("run_id", ())),
                     "level": level}
        a = sides.get("baseline", empty)
        b = sides.get("candidate", empty)
        row.update(median_a=_geo(a["log_median"]), median_b=_geo(b["log_median"]),
                   repeats=float(np.mean(present["repeats"])))
        row.update(noise_figures({s: p["log_median"] for s, p in sides.items()},
                                 np.concatenate([p["log_sd"] for p in sides.values()]),
                                 row["repeats"]))
        failure = _failure(key, sides, runs, problems)
        if failure is not None:
            row.update(verdict=str(failure[0]), reason=failure[1], rounds=0, paired=False)
        elif np.isnan(a["log_median"]).any() or np.isnan(b["log_median"]).any():
            row.update(verdict=str(Verdict.UNDECIDED), rounds=0, paired=False,
                       reason="a value <= 0: no relative change")
        else:
            xa, xb, paired = _pairs(a, b)
            result = decide(xa, xb, direction=row["direction"], threshold=threshold,
                            level=level, alpha=alpha, paired=paired, noise_floor=noise_floor)
            row.update({k: v for k, v in asdict(result).items() if k in COMPARISON_COLUMNS})
            row["verdict"] = str(result.verdict)
        row["decided_at"] = row.get("rounds", 0)
        rows.append(row)
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    out.attrs.update(threshold=threshold, alpha=alpha, spend=spent, family=len(gated),
                     level=level, noise_floor=noise_floor,
                     baseline=runs["baseline"], candidate=runs["candidate"])
    return out


def _geo(logs: np.ndarray) -> float:
    """The side's typical value: exp of the mean per-boot log median (geometric mean)."""
    return float(np.exp(np.mean(logs))) if len(logs) and np.isfinite(logs).all() else math.nan


def gate_exit(comparisons: pd.DataFrame) -> Verdict:
    """The family's answer: FAILED/REGRESSED if any gated row is, UNDECIDED if any gated row
    is still undecided (FAILED rows count whatever the metric), else UNCHANGED."""
    verdicts = comparisons["verdict"]
    gated = comparisons["gated"].astype(bool) | (verdicts == Verdict.FAILED)
    chosen = set(verdicts[gated])
    for v in (Verdict.FAILED, Verdict.REGRESSED, Verdict.UNDECIDED):
        if v in chosen:
            return v
    return Verdict.UNCHANGED
