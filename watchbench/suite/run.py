"""One boot of a built kernel: conformance, then the suite, kept as a run directory.

The run directory's layout and manifest belong to ``results.rundir``; this module fills it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace
from pathlib import Path

from watchbench.errors import InputError, WatchbenchError
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import Kernel
from watchbench.results import rundir
from watchbench.results.store import ingest_run
from watchbench.settings import Settings
from watchbench.suite import profile as suite_profile
from watchbench.suite.definition import RunKind, Suite, SuiteRun, load_suite, suite_digest
from watchbench.suite.provenance import booted_on, timestamp
from watchbench.vm import plugin
from watchbench.vm.boot import prepare
from watchbench.vm.cachemodel import STEADY_APPEND, STEADY_QEMU, CacheConfig, steady
from watchbench.vm.qemu import Accel, Share, VmSpec, qemu_argv
from watchbench.vm.session import BootResult, Guest, qemu_version
from watchbench.vm.share import read_file, write_file

# How much longer a suite takes than on TCG (icount serialises the vCPUs).
SLOWDOWN = {Accel.KVM: 1.0, Accel.TCG: 1.0, Accel.ICOUNT: 3.0}


class ConformanceError(WatchbenchError):
    """The API conformance suite failed: no benchmark figures are taken from this kernel."""


def normalized_argv(spec: VmSpec) -> list[str]:
    """The QEMU argv with per-boot paths replaced, so equal setups hash equal."""
    generic = replace(spec, kernel=Path("KERNEL"), initrd=Path("INITRD"),
                      channel_file=Path("CHANNEL"),
                      shares=tuple(Share(s.tag, Path(s.tag.upper()), s.readonly) for s in spec.shares),
                      plugin=spec.plugin and Path("PLUGIN"),
                      plugin_out=spec.plugin_out and Path("PROFILE"),
                      plugin_symbols=spec.plugin_symbols and (Path("STARTS"), Path("IRQ"),
                                                              Path("SOFTIRQ")))
    return qemu_argv(generic)


def manifest(run_id: str, suite: Suite, kernel: Kernel, accel: str, argv: list[str],
             label: str, extra: dict | None = None, *, qemu: str, initramfs: str,
             suite_hash: str, kernel_args: tuple[str, ...] = (),
             kconfig_add: tuple[str, ...] = ()) -> dict:
    """A run's provenance: what was booted, how, where (``qemu``: the QEMU version line,
    ``initramfs``: the base archive's content-keyed name, ``suite_hash``: suite_digest,
    ``kernel_args``: the user's extra boot parameters, ``kconfig_add``: the options the
    kernel's configuration was given after its fragments). Runs that differ in the last
    two are not compared (stats.compare, flows.shard). The fields it shares with a
    check's record are ``suite.provenance``'s."""
    return {
        "run_id": run_id,
        "timestamp": timestamp(),
        **booted_on(kernel, accel, qemu, argv, kconfig_add=kconfig_add,
                    kernel_args=kernel_args),
        "suite": suite.name,
        "suite_hash": suite_hash,
        "initramfs": initramfs,
        "label": label,
        **(extra or {}),
    }


def _write_outputs(raw: Path, runs: list[SuiteRun], result: BootResult) -> list[str]:
    """Save each command's output where the ingest expects it (never through what the guest
    left in its share: vm.share.write_file); return failure notes."""
    problems = []
    for run, outcome in zip(runs, result.commands, strict=True):
        lines = outcome.output
        if run.kind == "conformance":
            write_file(raw / rundir.RawFile.KTAP.of(run.name), "\n".join(lines) + "\n")
        elif run.kind == "c":
            records = [ln for ln in lines if ln.startswith("{")]
            write_file(raw / rundir.RawFile.RECORDS.of(run.name),
                       "".join(r + "\n" for r in records))
            write_file(raw / rundir.RawFile.LOG.of(run.name), "\n".join(lines) + "\n")
        else:
            write_file(raw / rundir.RawFile.PYTEST_LOG.of(run.name), "\n".join(lines) + "\n")
            skips = [ln for ln in lines if ln.startswith("SKIPPED")]
            if skips:
                status = [{"schema": 1, "benchmark": b, "source": "python", "params": {},
                           "status": "skipped", "reason": skips[0].split("] ", 1)[-1][:300]}
                          for b in (run.benchmarks or (run.name,))]
                write_file(raw / rundir.RawFile.STATUS.of(run.name),
                           "".join(json.dumps(s) + "\n" for s in status))
        if outcome.returncode is None:
            problems.append(f"{run.name}: not run")
        elif outcome.returncode != 0:
            problems.append(f"{run.name}: exit {outcome.returncode}")
    return problems


def with_cache_model(guest: Guest, settings: Settings) -> tuple[Guest, dict]:
    """A profiled guest with settings profile.cache_model on: its plugin simulates the
    configured caches, the guest is kept steady (the same addresses boot to boot:
    cachemodel.STEADY_QEMU, STEADY_APPEND), and the manifest says both (``cache_model``).
    Off: the guest and the manifest as they were before the model existed."""
    cache = CacheConfig.from_settings(settings.profile)
    if cache is None:
        return guest, {}
    return (replace(guest, plugin_args=tuple(cache.plugin_args()), qemu_args=STEADY_QEMU,
                    append=(*guest.append, *STEADY_APPEND)),
            {"cache_model": f"model, not a measurement: {cache.describe()}; {steady()}"})


# What the live progress counts in each kind of run's output.
COUNTED = {"conformance": "tests", "c": "records", "python": "pytest progress lines"}


def run_bench(settings: Settings, suite_name: str = "quick", accel: str | None = None,
              label: str = "", kernel: Kernel | None = None, runner: Runner = default_runner,
              progress: Progress | None = None, extra: dict | None = None,
              profile: bool = False, only: frozenset[str] | None = None,
              kernel_args: tuple[str, ...] = ()) -> Path:
    """One boot: conformance (required), then the suite; returns the run directory.
    ``profile``: under the instruction-count plugin (icount only), also profile.parquet;
    with settings profile.cache_model on, the plugin simulates caches too (its levels in
    the QEMU argv and the manifest's ``cache_model``; off, both are as without the model).
    ``only``: of the benchmarks, only the runs that measure one of these (and the runs
    that do not say what they measure: they may).
    ``kernel_args``: extra boot parameters besides the settings' ``kernel_args`` (all of
    them in the QEMU argv and the manifest, as the settings' ``kconfig_add`` is)."""
    progress = progress or Silent()
    suite = load_suite(settings.project_root, suite_name)
    if only is not None:
        suite = replace(suite, runs=tuple(r for r in suite.runs if r.kind is RunKind.CONFORMANCE
                                          or not r.benchmarks or set(r.benchmarks) & only))
    prepared = prepare(settings, accel, kernel, runner, progress)
    guest, kernel = prepared.guest, prepared.kernel
    append: tuple[str, ...] = ()
    model: dict = {}
    if profile:
        if guest.accel != Accel.ICOUNT:
            raise InputError(f"a profile counts instructions under icount, not {guest.accel}",
                             hint="profile with --accel icount (`./wb profile` does)")
        guest = replace(guest, plugin=plugin.build(settings, runner),
                        plugin_symbols=suite_profile.plugin_files(kernel))
        append = suite_profile.APPEND
        guest, model = with_cache_model(guest, settings)
        extra = {**(extra or {}), "profiled": True, **model}
    guest = replace(guest, kernel_args=(*guest.kernel_args, *kernel_args))
    run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{kernel.key[:8]}-{secrets.token_hex(4)}"
    run_dir = settings.runs_dir / run_id
    raw = rundir.raw_dir(run_dir)
    raw.mkdir(parents=True)
    runs = suite.conformance + suite.benchmarks
    commands = [replace(r.command(), required=r.kind == "conformance") for r in runs]
    if model and not any(c.side == "host" for c in commands):
        guest = replace(guest, results_share=False)  # nothing host-timed: repeatable misses
        extra = {**(extra or {}), "cache_model": f"{model['cache_model']}; no results share"}
    host_root = any(c.side == "host" for c in commands)
    view = guest.host_view(commands) if host_root else None  # read once: spec and boot
    spec = guest.spec(raw, raw, host_root, append, commands, view)
    argv = normalized_argv(spec)
    meta = manifest(run_id, suite, kernel, guest.accel, argv, label, extra,
                    qemu=qemu_version(runner), initramfs=guest.base_initrd.name,
                    suite_hash=suite_digest(settings.project_root, suite),
                    kernel_args=guest.kernel_args, kconfig_add=settings.kconfig_add)
    rundir.write_manifest(run_dir, meta)
    counts = [0] * len(commands)

    def seen(index: int, line: str) -> None:
        kind = runs[index].kind
        if kind == "conformance":
            counts[index] += line.startswith(("ok ", "not ok "))
        else:
            counts[index] += line.startswith("{") if kind == "c" else "%]" in line
        progress.update(f"{runs[index].name}: {counts[index]} {COUNTED[kind]}")

    timeout = settings.qemu.boot_timeout + suite.budget_s * 3 * SLOWDOWN[guest.accel]
    progress.step(f"suite {suite.name} ({len(runs)} runs) on {kernel.release} [{guest.accel}] "
                  f"-> {run_dir}")
    result = guest.run(commands, timeout=timeout, results=raw, on_output=seen, append=append,
                       view=view)
    meta["qemu_argv_full"] = result.argv
    meta["console_log"] = str(result.console_log)
    meta["wall_seconds"] = result.wall_seconds
    meta["guest_seconds"] = result.guest_seconds
    problems = _write_outputs(raw, runs, result)
    # The throttled live counts above are samples; say the final ones (CI logs show only samples).
    progress.step("; ".join(f"{r.name}: {c} {COUNTED[r.kind]}"
                            for r, c in zip(runs, counts, strict=True)))
    rundir.write_manifest(run_dir, meta)
    failed_conformance = [r for r, c in zip(runs, result.commands, strict=True)
                          if r.kind == "conformance" and c.returncode != 0]
    if failed_conformance:
        ktap = read_file(raw / rundir.RawFile.KTAP.of(failed_conformance[0].name)).splitlines()
        bad = [ln for ln in ktap if ln.lstrip().startswith("not ok")][:10]
        raise ConformanceError(
            f"API conformance failed on {kernel.release} ({kernel.series or 'no series'}); "
            f"no benchmarks were run:\n  " + "\n  ".join(bad or ktap[-10:]),
            log=raw / rundir.RawFile.KTAP.of(failed_conformance[0].name))
    if suite.benchmarks:  # a conformance-only suite has no records to tabulate
        _ingest(run_dir, progress)
    if profile:
        progress.step(f"profile: {suite_profile.write(run_dir, runs, result, kernel)}")
        if model and suite.benchmarks:  # its est_cycles_per_op joins the results (a model)
            _ingest(run_dir, progress)
    summary = f"run {run_id}: {result.wall_seconds:.0f} s wall"
    progress.done(summary + (f"; problems: {'; '.join(problems)}" if problems else ""))
    return run_dir


def _ingest(run_dir: Path, progress: Progress) -> None:
    path = ingest_run(run_dir)
    progress.step(f"results table: {path}")
