"""Hostile input at every task that needs no kernel: each case is a real command line run
through invoke's Program and our tasks collection (in this process: the imports are paid
once), on a cache and runs dir of the test's own. Each one must be exit 2 with a message
that names the bad input, no traceback, lines that fit 80 columns, and nothing changed
outside what the command owns: patches/, the runs dir, a canary directory, the sources
and the working directory are snapshotted before and after.

Exceptions that escape invoke itself (its config merge) are what ``inv`` hands to our
excepthook; here they go through the same ``report_uncaught``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import tasks
from tests.program import helps_kept
from watchbench import settings
from watchbench.cli import report_uncaught
from watchbench.cli.options import CI
from watchbench.cli.program import WatchbenchProgram
from watchbench.settings import PROJECT_ROOT

TWO = Path(__file__).resolve().parents[1] / "data" / "patches" / "two-patch"


# --- hostile sources, made once ------------------------------------------------------------


def _mail(subject: str, body: str) -> str:
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: Dev <dev@example.org>\nSubject: {subject}\n\n{body}\n")


def _diff(n: int) -> str:
    return (f"---\n f{n} | 1 +\n\ndiff --git a/f{n} b/f{n}\nindex 1111111..2222222 100644\n"
            f"--- a/f{n}\n+++ b/f{n}\n@@ -1 +1,2 @@\n line\n+added {n}\n--\n2.39.0\n")


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


SHARD = {"schema": 1, "index": 1, "count": 1, "series": "",
         "design": {"rounds": None, "min_rounds": 4, "round_step": 2, "max_rounds": 12,
                    "budget_s": 1200.0, "accel": "icount", "suite": "ci", "per_patch": False,
                    "threshold": 0.05, "alpha": 0.01, "noise_floor": 0.001},
         "planned": [0, 1], "variants": [{"role": "baseline", "patch_index": 0,
                                          "patch_subject": ""}],
         "rounds": [{"round": 0, "seconds": 1.0, "runs": {"baseline/0": "run-1"}}],
         "fingerprint": {"host": "h", "cpu_model": "c"}}


def _tampered(change: str) -> object:
    record = json.loads(json.dumps(SHARD))
    if change == "list":
        return [record]
    where, _, value = change.partition("=")
    *path, key = where.split(".")
    target = record
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    if value == "DELETE":
        del target[key]
    else:
        target[key] = json.loads(value)
    return record


TAMPERS = ["index=\"1\"", "count=0", "index=3", "design.threshold=5", "design.alpha=0.9",
           "design.accel=\"bogus\"", "design.extra=1", "rounds.0.runs={\"baseline/0\": \"../../x\"}",
           "rounds.0.runs={}", "rounds={}", "fingerprint={}", "variants=[]", "schema=99",
           "series=DELETE", "design.rounds=1", "rounds.0.seconds=-1", "list"]


def own_project(where: Path) -> Path:
    """A project root of this test's own: a copy of patches/ (which imports write into,
    staging beside the series), links to the rest. Under pytest-xdist each worker has
    one, so no case sees another worker's staging directories."""
    where.mkdir()
    for entry in sorted(PROJECT_ROOT.iterdir()):
        if entry.name == "patches":
            shutil.copytree(entry, where / "patches", symlinks=True)
        else:
            (where / entry.name).symlink_to(entry)
    return where


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The dirs a case may name ({canary}, {mbox_gap}...) and the ones it must not touch."""
    root = tmp_path_factory.mktemp("hostile")
    project = own_project(root / "project")
    canary = root / "canary"
    _write(canary / "keep.txt", "do not delete\n")
    _write(canary / "sub" / "also.txt", "nor this\n")
    file = _write(root / "a-file", "a file, not a directory\n")
    src = root / "src"
    ok = "".join(p.read_text() for p in sorted(TWO.glob("*.patch")))
    paths = {
        "canary": canary, "file": file, "root": root, "project": project,
        "patches": project / "patches",
        "mbox_ok": _write(src / "ok.mbox", ok),
        "mbox_gap": _write(src / "gap.mbox", _mail("[PATCH 1/3] a", _diff(1))
                           + _mail("[PATCH 3/3] c", _diff(3))),
        "mbox_v1v2": _write(src / "v1v2.mbox", _mail("[PATCH 1/1] a", _diff(1))
                            + _mail("[PATCH v2 1/1] a", _diff(2))),
        "mbox_counter": _write(src / "counter.mbox", _mail("[PATCH 1/x] a", _diff(1))),
        "mbox_nodiff": _write(src / "nodiff.mbox", _mail("[PATCH 1/2] a", "no diff here")
                              + _mail("[PATCH 2/2] b", _diff(2))),
        "mbox_cut": _write(src / "cut.mbox", _mail("[PATCH] a", _diff(1).split("@@ -1")[0]
                                                   + "@@ -1,5 +1,6 @@\n line\n")),
        "mbox_cover": _write(src / "cover.mbox", _mail("[PATCH 0/2] cover", "text only")),
        "mbox_mixed": _write(src / "mixed.mbox", _mail("[PATCH 1/2] a", _diff(1))
                             + _mail("[PATCH] b", _diff(2))),
        "mbox_twice": _write(src / "twice.mbox", _mail("[PATCH 1/2] a", _diff(1))
                             + _mail("[PATCH 1/2] a", _diff(1))
                             + _mail("[PATCH 2/2] b", _diff(2))),
        "mbox_totals": _write(src / "totals.mbox", _mail("[PATCH 1/2] a", _diff(1))
                              + _mail("[PATCH 2/3] b", _diff(2))),
        "mbox_binary": _write(src / "binary.mbox", bytes(range(256)) * 4),
        "dir_gap": src / "dir_gap", "dir_quilt_missing": src / "quilt_missing",
        "dir_nonutf8": src / "nonutf8", "dir_escape": src / "escape",
        "dir_two_mails": src / "two_mails", "dir_none": src / "none",
        "dir_empty_series": src / "empty_series", "dir_dup": src / "dup",
        "notgit": src / "notgit",
    }
    _write(paths["dir_gap"] / "1.patch", _mail("[PATCH 1/3] a", _diff(1)))
    _write(paths["dir_gap"] / "2.patch", _mail("[PATCH 3/3] c", _diff(3)))
    _write(paths["dir_quilt_missing"] / "series", "a.patch\nmissing.patch\n")
    _write(paths["dir_quilt_missing"] / "a.patch", _mail("[PATCH] a", _diff(1)))
    _write(paths["dir_nonutf8"] / "series", b"a.patch\n\xff\xfe.patch\n")
    _write(paths["dir_nonutf8"] / "a.patch", _mail("[PATCH] a", _diff(1)))
    _write(paths["dir_escape"] / "series", "../ok.mbox\n")
    _write(paths["dir_two_mails"] / "x.patch", _mail("[PATCH] a", _diff(1))
           + _mail("[PATCH] b", _diff(2)))
    _write(paths["dir_none"] / "README", "no patches here\n")
    _write(paths["dir_empty_series"] / "series", "# nothing\n")
    _write(paths["dir_dup"] / "series", "a.patch\na.patch\n")
    _write(paths["dir_dup"] / "a.patch", _mail("[PATCH] a", _diff(1)))
    paths["notgit"].mkdir()
    for number, change in enumerate(TAMPERS):
        shard = src / f"shard{number}" / "shard.json"
        _write(shard, json.dumps(_tampered(change)))
        paths[f"shard{number}"] = shard.parent
    paths["shard_notjson"] = _write(src / "shard_nj" / "shard.json", "{not json").parent
    configs = {"threshold": "watchbench:\n  decision: {threshold: 5}\n",
               "alpha": "watchbench:\n  decision: {alpha: 0}\n",
               "noise": "watchbench:\n  decision: {noise_floor: 1}\n",
               "ci_scalar": "watchbench:\n  ci: 4\n",
               "fragments": "watchbench:\n  fragments: 4\n",
               "cpus": "watchbench:\n  qemu: {cpus: [1]}\n",
               "rounds": "watchbench:\n  ci: {rounds: '1'}\n",
               "unknown": "watchbench:\n  ci: {max_round: 8}\n",
               "moved": "watchbench:\n  ci: {threshold: 0.1}\n",
               "max_rounds": "watchbench:\n  ci: {max_rounds: 2}\n",
               "threshold_x": "watchbench:\n  decision: {threshold: x}\n",
               "jobs": "watchbench:\n  jobs: -3\n",
               "ccache": "watchbench:\n  ccache: maybe\n",
               "accel": "watchbench:\n  ci: {accel: auto}\n",
               "budget": "watchbench:\n  ci: {budget_s: 0}\n",
               "gc": "watchbench:\n  gc: {boots: -1}\n",
               "kernel_args": "watchbench:\n  kernel_args: 'oops=continue'\n",
               "kconfig_add": "watchbench:\n  kconfig_add: [CONFIG_X=y, 'CONFIG_x=y']\n",
               "kconfig_add_scalar": "watchbench:\n  kconfig_add: CONFIG_X=y,CONFIG_X=n\n"}
    for name, text in configs.items():
        paths[f"cfg_{name}"] = _write(root / "configs" / f"{name}.yaml", text)
    paths["work"] = root / "work"
    paths["work"].mkdir()
    paths["cache"], paths["runs"] = root / "cache", root / "runs"
    paths["runs"].mkdir()
    _write(paths["runs"] / "run-x" / "manifest.json", "{}\n")
    return paths


# --- the table ---------------------------------------------------------------------------

IMPORT = ["patches.import", "--mbox", "{mbox_ok}"]
NAMES = ["../x", "..", ".", "/tmp/wb-hostile", "a/b", "", " ", "-x", ".hidden", "a" * 65,
         "x y", "naïve", "a;rm -rf ~", "~", "{canary}", "../../..", "patches/../x"]
SERIES_NAMES = [("nope", "nope"), ("../../etc", "etc"), (",", "no series named"),
                ("a,,nope", "patches/a"), ("{canary}", "canary"), ("{dir_nonutf8}", "not UTF-8"),
                ("{dir_escape}", "path out of"), ("{dir_dup}", "listed twice")]

# --kernel-args values that would break a run, and --kconfig-add lists that are not options.
KERNEL_ARGS = ["console=ttyS1", "panic=0", "oops=continue", "nokaslr\nquiet", "a -- b",
               'dyndbg="x', "loglevel=0", "x" * 1100]
KCONFIG_ADDS = [["CONFIG_x=y"], ["X=y"], ["CONFIG_X"], ["CONFIG_X=yes"], [""],
                ['CONFIG_S="a'], ["CONFIG_X=y", "CONFIG_X=n"], ["CONFIG_X=y;reboot"]]

CASES: list[tuple[str, list[str], str, dict[str, str]]] = []


def case(ident: str, argv: list[str], needle: str, env: dict[str, str] | None = None) -> None:
    CASES.append((ident, argv, needle, env or {}))


for i, name in enumerate(NAMES):
    case(f"import-name-{i}", ["patches.import", "--name", name, "--mbox", "{mbox_ok}"],
         "--name")
    case(f"import-name-force-{i}", ["patches.import", "--name", name, "--force", "--mbox",
                                    "{mbox_ok}"], "--name")
for ident, argv, needle in [
    ("no-source", ["patches.import", "--name", "x"], "give one source"),
    ("two-sources", [*IMPORT, "--name", "x", "--directory", "{canary}"], "--mbox and"),
    ("range-without-tree", ["patches.import", "--name", "x", "--range", "a..b"], "needs --tree"),
    ("tree-without-range", [*IMPORT, "--name", "x", "--tree", "{canary}"], "--tree"),
    ("range-not-range", ["patches.import", "--name", "x", "--tree", "{notgit}", "--range",
                         "HEAD"], "not a range"),
    ("range-option", ["patches.import", "--name", "x", "--tree", "{notgit}", "--range",
                      "--output=x..y"], "not a range"),
    ("range-not-git", ["patches.import", "--name", "x", "--tree", "{notgit}", "--range",
                       "a..b"], "not a git checkout"),
    ("range-tree-file", ["patches.import", "--name", "x", "--tree", "{file}", "--range",
                         "a..b"], "not a git checkout"),
    ("range-version", ["patches.import", "--name", "x", "--tree", "{notgit}", "--range",
                       "a..b", "--version", "2"], "--version"),
    ("mbox-missing", ["patches.import", "--name", "x", "--mbox", "{root}/nope.mbox"], "--mbox"),
    ("mbox-dir", ["patches.import", "--name", "x", "--mbox", "{canary}"], "--mbox"),
    ("mbox-empty-path", ["patches.import", "--name", "x", "--mbox", ""], "--mbox"),
    ("dir-missing", ["patches.import", "--name", "x", "--directory", "{root}/nope"],
     "--directory"),
    ("dir-file", ["patches.import", "--name", "x", "--directory", "{file}"], "--directory"),
    ("exists", ["patches.import", "--name", "watch_queue-bench", "--mbox", "{mbox_ok}"],
     "already exists"),
    ("version-x", [*IMPORT, "--name", "x", "--version", "x"], "--version"),
    ("version-0", [*IMPORT, "--name", "x", "--version", "0"], "--version"),
]:
    case(f"import-{ident}", argv, needle)
for source, needle in [("mbox_gap", "2/3 missing"), ("mbox_v1v2", "versions v1, v2"),
                       ("mbox_counter", "patch counter"), ("mbox_nodiff", "holds no diff"),
                       ("mbox_cut", "cut off"), ("mbox_cover", "nothing to import"),
                       ("mbox_mixed", "no n/m counter"), ("mbox_twice", "twice"),
                       ("mbox_totals", "disagree"), ("mbox_binary", "mailsplit")]:
    for force in (False, True):
        name = "watch_queue-bench" if force else "fresh"
        case(f"import-{source}{'-force' if force else ''}",
             ["patches.import", "--name", name, "--mbox", f"{{{source}}}",
              *(["--force"] if force else [])], needle)
case("import-v1v2-wrong-version", ["patches.import", "--name", "x", "--mbox", "{mbox_v1v2}",
                                   "--version", "3"], "--version 3")
for source, needle in [("dir_gap", "2/3 missing"), ("dir_quilt_missing", "missing.patch"),
                       ("dir_nonutf8", "not UTF-8"), ("dir_escape", "path out of"),
                       ("dir_two_mails", "holds 2 mails"), ("dir_none", "nothing to import"),
                       ("dir_empty_series", "series is empty"), ("dir_dup", "listed twice")]:
    for force in (False, True):
        case(f"import-{source}{'-force' if force else ''}",
             ["patches.import", "--name", "watch_queue-bench" if force else "fresh",
              "--directory", f"{{{source}}}", *(["--force"] if force else [])], needle)
for task in ("patches.check", "patches.apply", "patches.lint"):
    for i, (name, needle) in enumerate(SERIES_NAMES):
        case(f"{task}-{i}", [task, name], needle)

for ident, argv, needle in [
    ("merge-empty", ["--merge", ""], "--merge"), ("merge-commas", ["--merge", " , "], "--merge"),
    ("merge-twice-empty", ["--merge", "", "--merge", ""], "--merge"),
    ("merge-no-shard", ["--merge", "{canary}"], "canary"),
    ("merge-file", ["--merge", "{file}"], "a-file"),
    ("merge-and-threshold", ["--merge", "{shard0}", "--threshold", "0.1"], "--threshold"),
    ("merge-notjson", ["--merge", "{shard_notjson}"], "shard.json"),
    ("merge-out-file", ["--merge", "{shard0}", "--out", "{file}"], "--out"),
    *[(f"threshold-{v}", ["--threshold", v], "--threshold")
      for v in ("5", "0", "1", "-0.1", "abc", "nan", "inf", "", "1e9", "0x1")],
    *[(f"alpha-{v}", ["--alpha", v], "--alpha") for v in ("0", "0.6", "-1", "x", "nan")],
    *[(f"rounds-{v}", ["--rounds", v], "--rounds")
      for v in ("1", "0", "-2", "x", "2.5", "autox", "")],
    *[(f"jobs-{v}", ["--jobs", v], "--jobs") for v in ("-1", "x", "1.5", "")],
    *[(f"accel-{v}", ["--accel", v], "--accel") for v in ("bogus", "", "auto", "KVM")],
    ("suite-nope", ["--suite", "nope"], "nope"), ("suite-empty", ["--suite", ""], "--suite"),
    ("series-nope", ["--series", "nope"], "nope"), ("series-comma", ["--series", ","], "--series"),
    ("series-path", ["--series", "{canary}"], "canary"),
    ("shard-0", ["--shard", "0/2"], "--shard"), ("shard-3-of-2", ["--shard", "3/2"], "--shard"),
    ("shard-x", ["--shard", "x"], "--shard"),
    ("base-without-tree", ["--base", "v6.12"], "--base"),
    ("tree-file", ["--tree", "{file}", "--base", "v1"], "--tree"),
    ("profile-bogus", ["--profile", "bogus"], "--profile"),
    ("out-file", ["--out", "{file}"], "--out"), ("out-under-file", ["--out", "{file}/x"], "--out"),
    *[(f"merge-tampered-{i}", ["--merge", f"{{shard{i}}}"], "shard.json")
      for i in range(len(TAMPERS))],
    ("merge-kconfig-add", ["--merge", "{shard0}", "--kconfig-add", "CONFIG_X=y"],
     "--kconfig-add"),
    ("merge-kernel-args", ["--merge", "{shard0}", "--kernel-args", "nokaslr"], "--kernel-args"),
    ("merge-uncommitted", ["--merge", "{shard0}", "--uncommitted"], "--uncommitted"),
    ("merge-cache-model", ["--merge", "{shard0}", "--cache-model", "on"], "--cache-model"),
    ("cache-model-tcg", ["--cache-model", "on", "--accel", "tcg"],
     "--cache-model on with --accel tcg"),
    ("cache-model-word", ["--cache-model", "yes"], "--cache-model 'yes'"),
    # the working directory is no kernel checkout: nothing uncommitted to measure
    ("uncommitted-outside", ["--uncommitted"], "is not inside a kernel git checkout"),
    ("uncommitted-with-tree", ["--tree", "{root}", "--base", "v1", "--uncommitted"],
     "builds what it names"),
    *[(f"kernel-args-{i}", ["--kernel-args", v], f"--kernel-args {v[:60]!r}")
      for i, v in enumerate(KERNEL_ARGS)],
    *[(f"kconfig-add-{i}", [a for v in values for a in ("--kconfig-add", v)], "--kconfig-add")
      for i, values in enumerate(KCONFIG_ADDS)],
    # every option that stands for a setting with a range or choices, one declared later too
    *[(f"{name}-by-its-rule", [option.flag, "?"], f"{option.flag} '?'")
      for name, option in CI.items() if option.rule.check is None],
]:
    case(f"ci-{ident}", ["ci", *argv], needle)
for task_name in ("bench", "check", "all", "profile"):
    case(f"{task_name}-uncommitted-outside", [task_name, "--uncommitted"],
         "is not inside a kernel git checkout")

for ident, argv, needle in [
    *[(f"stress-{v}", ["--stress-seconds", v], "--stress-seconds") for v in ("x", "0", "-1", "1.5")],
    ("accel-bogus", ["--accel", "bogus"], "--accel"), ("accel-icount", ["--accel", "icount"],
                                                        "icount"),
    ("only-bogus", ["--only", "bogus"], "bogus"), ("series-nope", ["--series", "nope"], "nope"),
    ("out-file", ["--out", "{file}"], "--out"), ("base-only", ["--base", "v1"], "--base"),
    ("tree-file", ["--tree", "{file}", "--base", "v1"], "--tree"),
    ("kernel-args-quiet", ["--kernel-args", "quiet"], "sets quiet"),
    ("kconfig-add-bad", ["--kconfig-add", "CONFIG_KASAN"], "CONFIG_KASAN"),
]:
    case(f"check-{ident}", ["check", *argv], needle)

for ident, argv, needle in [
    ("rounds-x", ["a", "b", "keyctl-post", "--rounds", "x"], "--rounds"),
    ("rounds-neg", ["a", "b", "keyctl-post", "--rounds", "-1"], "--rounds"),
    ("accel", ["a", "b", "keyctl-post", "--accel", "bogus"], "--accel"),
    *[(f"jobs-{v}", ["a", "b", "keyctl-post", "--jobs", v], "--jobs") for v in ("-1", "x", "")],
    ("jobs-tcg", ["a", "b", "keyctl-post", "--jobs", "2", "--accel", "tcg"],
     "--jobs 2 with --accel tcg"),
    ("benchmark", ["a", "b", "nope"], "nope"),
    ("suite", ["a", "b", "keyctl-post", "--suite", "nope"], "nope"),
    ("good-empty", ["", "b", "keyctl-post"], "GOOD"),
    ("bad-option", ["a", "--x", "keyctl-post"], "BAD"),
]:
    case(f"bisect-{ident}", ["bisect", *argv], needle)

for ident, argv, needle in [
    ("compare-a-empty", ["compare", "", "x"], "A"), ("compare-b-commas", ["compare", "x", ","], "B"),
    ("compare-md-dir", ["compare", "x", "y", "--markdown", "{canary}"], "--markdown"),
    ("compare-md-under-file", ["compare", "x", "y", "--markdown", "{file}/x.md"], "--markdown"),
    ("report-out-file", ["report", "--out", "{file}"], "--out"),
    ("report-runs-commas", ["report", "--runs", ","], "--runs"),
    ("report-baseline-only", ["report", "--baseline", "run-x"], "--candidate"),
    ("report-candidate-only", ["report", "--candidate", "run-x"], "--baseline"),
    ("export-format-bogus", ["export", "--format", "bogus"], "bogus"),
    ("export-no-format", ["export"], "--format"),
    ("export-format-empty", ["export", "--format", ""], "--format"),
    ("export-out-dir", ["export", "--format", "csv", "--out", "{canary}"], "--out"),
    ("export-runs-commas", ["export", "--format", "csv", "--runs", ","], "--runs"),
    *[(f"profile-top-{v}", ["profile", "--top", v], "--top") for v in ("0", "-1", "x", "1.5", "")],
    ("profile-run-path", ["profile", "--run", "../x"], "--run"),
    ("profile-run-missing", ["profile", "--run", "nope"], "nope"),
    ("profile-suite", ["profile", "--suite", "nope"], "nope"),
    ("bench-accel", ["bench", "--accel", "bogus"], "--accel"),
    ("bench-suite", ["bench", "--suite", "nope"], "nope"),
    ("bench-suite-empty", ["bench", "--suite", ""], "--suite"),
    ("bench-profile-tcg", ["bench", "--profile", "--accel", "tcg"], "tcg"),
    ("bench-cache-model-alone", ["bench", "--cache-model"], "--cache-model"),
    ("profile-run-cache-model", ["profile", "--run", "x", "--cache-model"], "--cache-model"),
    *[(f"run-timeout-{v}", ["vm.run", "--timeout", v, "--", "true"], "--timeout")
      for v in ("x", "0", "-5", "nan")],
    ("run-accel", ["vm.run", "--accel", "bogus", "--", "true"], "--accel"),
    ("shell-accel", ["vm.shell", "--accel", "bogus"], "--accel"),
    ("fetch-tree-file", ["kernel.fetch", "--tree", "{file}", "--base", "v1"], "--tree"),
    ("fetch-base-only", ["kernel.fetch", "--base", "v1"], "--base"),
    ("fetch-tree-and-tarball", ["kernel.fetch", "--tree", "{canary}", "--tarball", "{file}"],
     "--tarball"),
    ("fetch-tarball-missing", ["kernel.fetch", "--tarball", "{root}/nope.tar"], "--tarball"),
    ("fetch-tree-no-base", ["kernel.fetch", "--tree", "{canary}"], "--base"),
    ("config-fragment", ["config", "--fragments", "nope"], "nope"),
    ("config-fragments-commas", ["config", "--fragments", ","], "--fragments"),
    ("all-accel", ["all", "--accel", "bogus"], "--accel"),
    ("all-series", ["all", "--series", "nope"], "nope"),
    ("all-fragments", ["all", "--fragments", "nope"], "nope"),
    ("all-suite", ["all", "--suite", "nope"], "nope"),
    ("all-base", ["all", "--base", "v1"], "--base"),
    ("all-kernel-args", ["all", "--kernel-args", "init=/bin/sh"], "sets init"),
    ("all-kconfig-add", ["all", "--kconfig-add", "DEBUG_FS=y"], "DEBUG_FS=y"),
    *[(f"bench-kernel-args-{i}", ["bench", "--kernel-args", v], "--kernel-args")
      for i, v in enumerate(KERNEL_ARGS)],
    ("bench-kconfig-add", ["bench", "--kconfig-add", "CONFIG_X=on"], "CONFIG_X=on"),
    ("run-kernel-args", ["vm.run", "--kernel-args", "rdinit=/bin/sh", "--", "true"],
     "sets rdinit"),
    ("run-kconfig-add", ["vm.run", "--kconfig-add", "CONFIG_X=y", "--kconfig-add",
                         "CONFIG_X=m", "--", "true"], "contradicts"),
    *[(f"build-kconfig-add-{i}", ["build", *[a for v in values for a in ("--kconfig-add", v)]],
       "--kconfig-add") for i, values in enumerate(KCONFIG_ADDS)],
    ("config-kconfig-add", ["config", "--kconfig-add", "CONFIG_X=y\nCONFIG_Y=y"],
     "--kconfig-add"),
    *[(f"runs-limit-{v}", ["runs", "--limit", v], "--limit") for v in ("x", "-1", "1.5", "", "2x")],
    *[(f"gc-keep-{kind}-{v}", ["gc", f"--keep-{kind}", v], f"--keep-{kind}")
      for kind in ("runs", "kernels", "builds", "boots") for v in ("x", "-1", "1.5", "")],
    *[(f"gc-older-than-{v}", ["gc", "--older-than", v], "--older-than")
      for v in ("x", "-1", "nan", "", "inf-")],
    *[(f"gc-delete-{v}", ["gc", "--delete", "--older-than", v], "--older-than")
      for v in ("-3", "x")],
]:
    case(ident, argv, needle)

for ident, var, value, needle in [
    ("unknown", "FOO", "1", "INVOKE_WATCHBENCH_FOO"),
    ("moved", "CI_THRESHOLD", "0.1", "INVOKE_WATCHBENCH_DECISION_THRESHOLD"),
    ("threshold", "DECISION_THRESHOLD", "5", "threshold"),
    ("threshold-x", "DECISION_THRESHOLD", "abc", "threshold"),
    ("alpha", "DECISION_ALPHA", "0.9", "alpha"), ("rounds", "CI_ROUNDS", "1", "rounds"),
    ("jobs", "CI_JOBS", "-1", "jobs"), ("cpus", "QEMU_CPUS", "0", "cpus"),
    ("accel", "CI_ACCEL", "bogus", "accel"), ("list", "FRAGMENTS", "x", "FRAGMENTS"),
    ("max-rounds", "CI_MAX_ROUNDS", "2", "max_rounds"),
    ("typo", "CI_MAXROUNDS", "8", "INVOKE_WATCHBENCH_CI_MAXROUNDS"),
    ("gc-days", "GC_DAYS", "-1", "gc.days"), ("gc-runs", "GC_RUNS", "x", "gc.runs"),
    ("kernel-args", "KERNEL_ARGS", "console=ttyS1", "watchbench.kernel_args"),
    ("kernel-args-newline", "KERNEL_ARGS", "a\nb", "watchbench.kernel_args"),
    ("kconfig-add", "KCONFIG_ADD", "CONFIG_X=y", "KCONFIG_ADD"),
    ("cache-model", "PROFILE_CACHE_MODEL", "yes", "profile.cache_model"),
    ("cache-ll", "PROFILE_LL", "1000:3:64", "profile.ll"),
]:
    case(f"env-{ident}", ["patches.list"], needle, {f"INVOKE_WATCHBENCH_{var}": value})
for name, needle in [("threshold", "threshold"), ("alpha", "alpha"), ("noise", "noise_floor"),
                     ("ci_scalar", "watchbench"), ("fragments", "fragments"), ("cpus", "cpus"),
                     ("rounds", "rounds"), ("unknown", "max_round"), ("moved", "ci.threshold"),
                     ("max_rounds", "max_rounds"), ("threshold_x", "threshold"),
                     ("jobs", "jobs"), ("ccache", "ccache"), ("accel", "accel"),
                     ("budget", "budget_s"), ("gc", "gc.boots"),
                     ("kernel_args", "sets oops"), ("kconfig_add", "'CONFIG_x=y'"),
                     ("kconfig_add_scalar", "contradicts")]:
    case(f"config-file-{name}", ["-f", f"{{cfg_{name}}}", "patches.list"], needle)
# invoke's own usage errors, said by ./wb's Program (cli/program.py) as exit 2.
for ident, argv, needle in [
    ("unknown-option", ["ci", "--bogus"], "ci: unknown option --bogus"),
    ("typo-option", ["ci", "--thresold", "0.1"], "did you mean --threshold?"),
    ("core-option", ["--bogus", "ci"], "unknown option --bogus"),
    ("missing-value", ["ci", "--threshold"], "--threshold needs a value"),
    ("missing-value-import", ["patches.import", "--name"], "--name needs a value"),
    ("missing-value-run", ["vm.run", "--accel"], "--accel needs a value"),
    ("unknown-task", ["cii"], "no task named 'cii'"),
    ("unknown-task-after", ["ci", "nope"], "'nope' is neither"),
    ("help-unknown-task", ["--help", "nope"], "no task named 'nope'"),
    ("list-unknown-group", ["--list", "nope"], "--list 'nope'"),
    ("missing-positionals", ["compare"], "missing A and B"),
    ("missing-positional", ["bisect", "a", "b"], "missing BENCHMARK"),
    ("missing-series", ["patches.check"], "missing SERIES"),
    ("extra-argument", ["compare", "a", "b", "c"], "'c' is neither"),
    ("switch-given-value", ["ci", "--per-patch=yes"], "'yes'"),
    ("gc-switch-given-value", ["gc", "--delete=yes"], "'yes'"),
    ("runs-unknown-option", ["runs", "--all"], "runs: unknown option --all"),
]:
    case(f"usage-{ident}", argv, needle)


# --- running a case -------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, object]:
    """Every file and directory under the roots: a file's type, size, mtime and (small)
    content; a directory's existence (its mtime moves when a scratch entry comes and goes)."""
    seen: dict[str, object] = {"project": tuple(sorted(os.listdir(PROJECT_ROOT)))}
    for root in roots:
        for path in [root, *sorted(root.rglob("*"))] if root.exists() else []:
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                seen[str(path)] = "dir"
                continue
            small = stat.S_ISREG(info.st_mode) and info.st_size < 1 << 20
            seen[str(path)] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns,
                               hash(path.read_bytes()) if small else None)
    return seen


def changed(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@pytest.fixture(autouse=True)
def project_of_its_own(world, monkeypatch):
    """Every Settings made during a case has the world's project root (its patches/)."""
    monkeypatch.setattr(settings, "PROJECT_ROOT", world["project"])


@pytest.fixture(autouse=True)
def nothing_but_git(monkeypatch):
    """A case that slips through validation must not download, build or boot here."""
    from watchbench.host.runner import default_runner

    real = default_runner.run

    def guarded(argv, *args, **kwargs):
        if Path(str(argv[0])).name != "git":
            raise AssertionError(f"a hostile input got as far as running {argv[:3]}")
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(default_runner, "run", guarded)


def inv(argv: list[str]) -> tuple[int, str]:
    """``./wb ARGV`` in this process (its Program, our tasks): exit code and everything
    it printed."""
    out = io.StringIO()
    code = 0
    with helps_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            WatchbenchProgram(namespace=tasks.ns, name="watchbench", binary="./wb").run(
                ["./wb", *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 -- what inv's excepthook gets
            code = report_uncaught(exc)
    return code, out.getvalue()


def fits(text: str) -> list[str]:
    """Lines wider than 80 columns that are not one long word (a path)."""
    return [line for line in text.splitlines() if len(line) > 80 and len(line.split()) > 1]


def pastes_wb(text: str) -> bool:
    """The message says what to do with a ./wb command to paste (in its hint)."""
    hint = " ".join(text.split()).partition("hint: ")[2]
    return "./wb " in hint or hint.endswith("./wb")


@pytest.mark.parametrize(("argv", "needle", "env"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_input_is_exit_2_named_and_harmless(world, monkeypatch, argv, needle, env):
    monkeypatch.chdir(world["work"])
    for name in [n for n in os.environ if n.startswith("INVOKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INVOKE_WATCHBENCH_CACHE_DIR", str(world["cache"]))
    monkeypatch.setenv("INVOKE_WATCHBENCH_RUNS_DIR", str(world["runs"]))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = [arg.format(**world) for arg in argv]
    needle = needle.format(**world)
    guarded = (world["project"], world["runs"], world["canary"], world["work"], world["root"] / "src",
               world["file"])
    before = snapshot(*guarded)
    code, out = inv(argv)
    assert code == 2, out
    assert needle in " ".join(out.split()), out
    assert "Traceback" not in out and "internal error" not in out, out
    assert not fits(out), fits(out)
    assert pastes_wb(out), out
    assert not changed(before, snapshot(*guarded)), out


def test_the_table_is_big_enough_and_covers_every_task_without_a_kernel():
    assert len(CASES) >= 150
    tasks_named = {argv[0] if not argv[0].startswith("-") else argv[2]
                   for ident, argv, _, _ in CASES if not ident.startswith("usage-")}
    assert tasks_named >= {"patches.import", "patches.check", "patches.apply", "patches.lint",
                           "patches.list", "ci", "check", "bisect", "compare", "report",
                           "export", "profile", "bench", "vm.run", "vm.shell", "kernel.fetch",
                           "config", "all", "runs", "gc"}


# --- no traceback, ever ----------------------------------------------------------------------


def test_an_unexpected_exception_is_an_error_naming_its_log(world, monkeypatch):
    from watchbench.cli import patches

    def broken(settings):
        raise RuntimeError("a bug nobody expected")

    monkeypatch.setenv("INVOKE_WATCHBENCH_CACHE_DIR", str(world["cache"]))
    monkeypatch.setenv("INVOKE_WATCHBENCH_RUNS_DIR", str(world["runs"]))
    monkeypatch.setattr(patches, "series_table", broken)
    code, out = inv(["patches.list"])
    assert code == 2 and "Traceback" not in out, out
    assert "internal error: RuntimeError: a bug nobody expected" in out
    assert "please report it" in out and not fits(out)
    log = Path(" ".join(out.split()).split("log: ")[1].split()[0])
    assert log.parent == world["cache"] / "logs"
    assert "Traceback" in log.read_text() and "a bug nobody expected" in log.read_text()


def test_inv_itself_turns_what_escapes_invoke_into_an_error(world, tmp_path):
    """The real `inv`: invoke's own config merge fails after our tasks are loaded; the
    excepthook tasks.py installs says it as an error (one subprocess, ~2 s)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")},
           "INVOKE_WATCHBENCH_CACHE_DIR": str(world["cache"]),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(world["runs"])}
    done = subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT_ROOT), "-f",
                           str(world["cfg_ci_scalar"]), "patches.list"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and "watchbench settings" in out and not fits(out)


# --- ./wb itself ---------------------------------------------------------------------------


def test_wb_runs_its_own_program_and_a_usage_error_is_exit_2(world, tmp_path):
    """The launcher runs cli/program.py (not invoke's inv, whose usage errors are exit 1),
    loading tasks.py and invoke.yaml as inv does (one subprocess, ~2 s)."""
    assert 'exec "$venv/bin/python" -m watchbench.cli.program "$@"' in (
        PROJECT_ROOT / "wb").read_text()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")},
           "INVOKE_WATCHBENCH_CACHE_DIR": str(world["cache"])}
    done = subprocess.run([sys.executable, "-m", "watchbench.cli.program", "ci", "--thresold",
                           "0.1"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("error: ci: unknown option --thresold\n"
                           "hint: did you mean --threshold? its options: ./wb --help ci\n")


def test_settings_shows_each_value_and_where_it_came_from(world, monkeypatch, tmp_path):
    monkeypatch.chdir(world["work"])
    for name in [n for n in os.environ if n.startswith("INVOKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INVOKE_WATCHBENCH_CI_JOBS", "3")
    config = _write(tmp_path / "mine.yaml", "watchbench:\n  decision: {threshold: 0.1}\n")
    code, out = inv(["-f", str(config), "settings"])
    assert code == 0 and not fits(out), out
    out = " ".join(out.split())
    assert "watchbench.ci.jobs = 3 (from $INVOKE_WATCHBENCH_CI_JOBS)" in out
    assert f"watchbench.decision.threshold = 0.1 (from {config})" in out
    assert "watchbench.decision.alpha = 0.01 (default)" in out


def test_every_command_body_names_the_task_its_help_hint_points_at():
    """``command`` appends `./wb --help TASK` to a hint without a ./wb line: the TASK
    it derives from the function must be a real one."""
    import importlib

    names = set(tasks.ns.task_names)
    bodies = [body for module in ("correctness", "host", "kernel", "measure", "patches",
                                  "regressions", "results", "settings_view", "vm")
              for body in vars(importlib.import_module(f"watchbench.cli.{module}")).values()
              if hasattr(body, "task")]
    assert len(bodies) >= 25 and {b.task for b in bodies} <= names
