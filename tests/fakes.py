"""The fakes of the fast suite, each standing in for one seam, each backed by a real run.

- ``FakeRunner`` for ``host.runner.Runner`` (argv in, exit code out); the real runner
  runs in unit/test_runner.py.
- ``ReplayRunner`` for QEMU, replaying a recorded console and channel; real boots run in
  integration/test_boot_integration.py.
- ``FakeKernels`` for ``kernel.variant.Composer`` (compose and build); the real one builds
  in integration/test_ci_integration.py and test_your_branch.py.
- ``FakeBench`` for ``suite.run.run_bench`` (one boot, one run directory); real boots run
  in integration/test_bench_integration.py and test_ci_integration.py.

``FakeBench`` writes its run directories with the real writer (``results.rundir``) and
the real provenance builder (``suite.run.manifest``), JSON Lines records as
bench/RECORDS.md describes them, and ingests them with the real ``ingest_run``: only the
boot is not real, its figures are drawn from a noise model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchbench.errors import WatchbenchError
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Completed, Runner
from watchbench.kernel.build import Kernel
from watchbench.kernel.series import Series
from watchbench.results import rundir
from watchbench.results.profile import (
    ASYNC,
    COST_MODEL,
    PROFILE_COLUMNS,
    PROFILE_SCHEMA,
    with_estimate,
    write_profile,
)
from watchbench.results.records import params_key
from watchbench.results.store import ingest_run
from watchbench.settings import kernel_words
from watchbench.suite.definition import RunKind, Suite, SuiteRun, suite_digest
from watchbench.suite.run import manifest

DATA = Path(__file__).resolve().parent / "data"


class FakeRunner(Runner):
    """Records argv; answers from a table (the real runner is exercised in test_runner.py)."""

    def __init__(self, answers: dict[str, int | Exception] | None = None):
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def run(self, argv, **kw):  # type: ignore[override]
        self.calls.append([str(a) for a in argv])
        answer = self.answers.get(argv[0], 0)
        if isinstance(answer, Exception):
            raise answer
        return Completed([str(a) for a in argv], answer, "", "", 0.0)


def console_lines(name: str, logs: Path = DATA / "console") -> list[str]:
    return (logs / f"{name}.console.log").read_text(errors="replace").splitlines()


class ReplayProcess:
    """Stands in for QEMU: yields a recorded console, writes a recorded channel, then ends
    (or, for a hang, stays silent forever)."""

    def __init__(self, console, channel_src, channel_dst, hang=False):
        self._lines, self._src, self._dst, self._hang = console, channel_src, channel_dst, hang
        self.last_line, self.last_line_at, self.killed = "", time.monotonic(), False

    def lines(self, poll=0.1):
        if self._src:
            shutil.copyfile(self._src, self._dst)
        for line in self._lines:
            self.last_line, self.last_line_at = line, time.monotonic()
            yield line
        while self._hang and not self.killed:
            time.sleep(poll)
            yield None

    def wait(self, timeout=None):
        return 0

    def kill(self):
        self.killed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


class ReplayRunner:
    """``spawn`` replays tests/data/console/<name>.console.log (and a channel log)."""

    def __init__(self, name, channel=None, hang=False, logs: Path = DATA / "console"):
        self.name, self.channel, self.hang, self.logs, self.spawned = name, channel, hang, logs, []

    def spawn(self, argv, *, log=None, **kw):
        channel_dst = Path(next(a for a in argv if a.startswith("file:"))[5:])
        text = console_lines(self.name, self.logs)
        if self.hang:  # QEMU printed its last line because it was killed: not yet, in a replay
            text = [ln for ln in text if not ln.startswith("qemu-system")]
        log.write_text("\n".join(text) + "\n")
        self.spawned.append(ReplayProcess(text, self.channel and self.logs / self.channel,
                                          channel_dst, self.hang))
        return self.spawned[-1]


# --- the kernel side and the boots of the flows ------------------------------------------


class FakeKernels:
    """Composes without building: one ``Kernel`` per series (or commit), under ``root``.

    ``fail`` maps a series name (or commit) to the error composing it raises, as a patch
    that does not apply or a build that fails would.
    """

    def __init__(self, root: Path, fail: dict[str, WatchbenchError] | None = None,
                 progress: Progress | None = None):
        self.root, self.fail = root, fail or {}
        self.progress = progress or Silent()  # says what kernel.build says of a cached kernel
        self.composed: list[str] = []
        self.fragments: list[list[str] | None] = []  # as each kernel() was asked
        self.restored = 0
        self.tree = None  # the clients' seam (flows.check) gets it; the fake builds nothing

    def _kernel(self, name: str, head: str, config: str = "") -> Kernel:
        if name in self.fail:
            raise self.fail[name]
        self.composed.append(name)
        key = hashlib.sha256((name + (f"\0{config}" if config else "")).encode()).hexdigest()[:16]
        directory = self.root / "kernels" / key
        directory.mkdir(parents=True, exist_ok=True)
        self.progress.step(f"kernel {key} already built ({directory})")
        return Kernel(key, directory, "6.12.0-fake", "fake-tree", "b" * 40, "fake base", head,
                      name, hashlib.sha256(b"series " + name.encode()).hexdigest()[:16], "",
                      "c" * 16, "gcc fake",
                      0.0, 0)

    def kernel(self, series: Series | None, fragments: list[str] | None = None) -> Kernel:
        name = series.name if series else ""
        self.fragments.append(fragments)
        return self._kernel(name, name or "base", ",".join(fragments or ()))

    def at_commit(self, commit: str) -> Kernel:
        return self._kernel(commit, commit)

    def restore(self) -> None:
        self.restored += 1

    def hold(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()  # the real lock is tested in unit/test_lock.py


# The cases FakeBench reports, each with its primary metric (as the real programs do).
CASES = (("kernel-post", {"case": "free", "queues": 1}, "ns_per_record", 180.0),
         ("keyctl-post", {"case": "stream", "queues": 1}, "ns_per_op", 1500.0))
Level = Callable[[Kernel, str], float | None]  # (kernel, benchmark) -> factor; None: broken


class FakeBench:
    """One boot, faked: a run directory as ``run_bench`` leaves it, figures drawn around
    ``CASES`` times ``level(kernel, benchmark)`` with a between-boot and a within-boot CV.
    A profiled boot with settings profile.cache_model on has the model's misses too, and
    ``misses(kernel, benchmark)`` more LL (and D1) misses per op in post_one_notification,
    and is ingested again, as run_bench does (its est_cycles_per_op joins the results)."""

    def __init__(self, level: Level | None = None, boot_cv: float = 0.002,
                 within_cv: float = 0.001, repeats: int = 5, seed: int = 0,
                 qemu: str = "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)",
                 misses: Level | None = None):
        self.qemu = qemu
        self.level = level or (lambda kernel, benchmark: 1.0)
        self.misses = misses or (lambda kernel, benchmark: 0.0)
        self.boot_cv, self.within_cv, self.repeats = boot_cv, within_cv, repeats
        self.rng = np.random.default_rng(seed)
        self.boots: list[dict[str, Any]] = []
        self.profiles: list[dict[str, Any]] = []

    def __call__(self, settings, suite_name: str = "ci", accel: str | None = None,
                 label: str = "", kernel: Kernel | None = None, runner=None, progress=None,
                 extra: dict | None = None, profile: bool = False,
                 only: frozenset[str] | None = None) -> Path:
        assert kernel is not None, "the flows always hand run_bench their kernel"
        run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{kernel.key[:8]}-" \
                 f"{secrets.token_hex(3)}"
        run_dir = settings.runs_dir / run_id
        raw = rundir.raw_dir(run_dir)
        raw.mkdir(parents=True)
        suite = Suite(suite_name, "fake", 60.0, (SuiteRun("bench", RunKind.C, "wq-fake"),))
        # As run_bench: the settings' extra boot parameters in the argv and the manifest,
        # with the kconfig additions the kernel was configured with.
        words = kernel_words(settings.kernel_args)
        argv = ["qemu-system-x86_64", "-accel", str(accel or "icount"),
                *(["-append", " ".join(words)] if words else [])]
        rundir.write_manifest(run_dir, manifest(
            run_id, suite, kernel, accel or "icount", argv, label, extra, qemu=self.qemu,
            initramfs="base-fake.cpio.gz", suite_hash=suite_digest(Path("."), suite),
            kernel_args=words, kconfig_add=settings.kconfig_add))
        lines = []
        for benchmark, params, metric, base in CASES:
            factor = self.level(kernel, benchmark)
            if factor is None:
                lines.append({"schema": 1, "benchmark": benchmark, "source": "c",
                              "params": params, "status": "failed",
                              "reason": "ioctl(IOC_WATCH_QUEUE_SET_SIZE): EOPNOTSUPP"})
                continue
            boot = self.rng.normal(0, self.boot_cv)
            for repeat in range(self.repeats):
                value = base * factor * float(np.exp(boot + self.rng.normal(0, self.within_cv)))
                lines.append({"schema": 1, "benchmark": benchmark, "source": "c",
                              "params": params, "repeat": repeat, "iterations": 1000,
                              "metrics": {metric: {"value": value, "unit": "ns",
                                                   "direction": "lower", "primary": True},
                                          "ops_per_s": {"value": 1e9 / value, "unit": "op/s",
                                                        "direction": "higher"}},
                              "status": "ok"})
        (raw / rundir.RawFile.RECORDS.of("bench")).write_text(
            "".join(json.dumps(line) + "\n" for line in lines))
        if progress is not None:  # the lines run_bench says, with their paths
            progress.step(f"suite {suite_name} (1 runs) on {kernel.release} [{accel}] "
                          f"-> {run_dir}")
        path = ingest_run(run_dir)
        if progress is not None:
            progress.step(f"results table: {path}")
            progress.done(f"run {run_id}: 1 s wall")
        boot = {"run_id": run_id, "series": kernel.series, "profiled": profile, "only": only,
                **(extra or {})}
        model = profile and settings.profile.cache_model == "on"
        if profile:
            write_profile(run_dir, self.profile(kernel, run_id, only, model))
            if model:
                ingest_run(run_dir)
        if profile and "ci_id" not in (extra or {}):  # the gate's explanation, kept apart
            self.profiles.append({**boot, "model": model})
        else:
            self.boots.append({**boot, "model": model})
        return run_dir

    def profile(self, kernel: Kernel, run_id: str, only: frozenset[str] | None,
                model: bool = False) -> pd.DataFrame:
        """A profile as results.profile writes it (the real one: tests/integration): the
        slowed share of each case lands in post_one_notification, and with the ``model``
        so do the added misses (the other functions miss 0.1 LL per op, both sides)."""
        rows = []
        for benchmark, params, _, base in CASES:
            factor = self.level(kernel, benchmark)
            if factor is None or (only is not None and benchmark not in only):
                continue
            split = {"post_one_notification": base * 0.4 + base * (factor - 1),
                     "lookup_user_key": base * 0.6, ASYNC: 2.0}
            total = base * factor
            for symbol, per_op in split.items():
                ll = 0.1 + (self.misses(kernel, benchmark) or 0.0) * (
                    symbol == "post_one_notification")
                rows.append({"schema": PROFILE_SCHEMA, "run_id": run_id, "benchmark": benchmark,
                             "params": params_key(params), "symbol": symbol,
                             "instr_per_op": per_op, "spread": 0.0, "share": per_op / total,
                             "instructions": int(per_op * 5000), "ops": 5000, "repeats": 5,
                             "case_instr_per_op": total, "case_ns_per_op": total,
                             "interleaved": False,
                             **({"dref_per_op": per_op / 3, "i1_miss_per_op": 0.0,
                                 "d1_miss_per_op": ll, "ll_miss_per_op": ll} if model else {})})
        table = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
        if not model:
            return table
        return with_estimate(table, COST_MODEL, f"{COST_MODEL.describe()}; caches fake")


class Steps(Silent):
    """A progress that keeps its step lines, for tests that check what a command said."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)
