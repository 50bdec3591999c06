"""Choosing the accelerator. KVM is trusted only after a real guest booted under it.

Two stages. First a 512-byte boot sector that writes to QEMU's isa-debug-exit port, so
QEMU exits with a known code (67) as soon as the guest runs: this fails fast where QEMU
cannot use KVM at all. Then the real kernel boots under KVM with a 10 s limit. /dev/kvm
existing is not enough, and neither is the boot sector: on hosts without vmx/svm the boot
sector still runs (slowly, in ~5 s) while a Linux guest hangs.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from watchbench.errors import CommandError, CommandTimeout, InputError, WatchbenchError
from watchbench.host.runner import Runner, default_runner
from watchbench.vm.qemu import ACCELERATORS, AUTO, Accel

EXIT_PORT_VALUE = 0x21
EXPECTED_EXIT = (EXIT_PORT_VALUE << 1) | 1  # isa-debug-exit: (value << 1) | 1
PROBE_SECONDS = 10.0
VERDICT_TTL = 24 * 3600


def boot_sector() -> bytes:
    """mov al,0x21; out 0xf4,al; then hlt forever (if the exit device is missing)."""
    code = bytes([0xB0, EXIT_PORT_VALUE, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])
    return code + b"\0" * (510 - len(code)) + b"\x55\xaa"


def probe_argv(image: Path, accel: str) -> list[str]:
    accel_arg = Accel.KVM if accel == Accel.KVM else Accel.TCG
    return ["qemu-system-x86_64", "-machine", "pc", "-accel", accel_arg, "-m", "16",
            "-display", "none", "-nodefaults", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive", f"file={image},format=raw,if=ide"]


@dataclass
class ProbeResult:
    """What a boot under one accelerator showed (cached as JSON for a day)."""

    accel: str
    works: bool
    reason: str
    seconds: float
    checked_at: float
    host: str


def probe(accel: str, workdir: Path, runner: Runner = default_runner,
          limit: float = PROBE_SECONDS) -> ProbeResult:
    """Really boot the tiny guest under ``accel``; it works only if QEMU exits with 67."""
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / "probe-boot-sector.img"
    image.write_bytes(boot_sector())
    start = time.monotonic()
    host = platform.release()
    try:
        done = runner.run(probe_argv(image, accel), timeout=limit, check=False)
    except CommandTimeout:
        return ProbeResult(accel, False, f"the probe guest hung for {limit:.0f} s (killed)",
                       round(time.monotonic() - start, 2), time.time(), host)
    except CommandError as exc:
        return ProbeResult(accel, False, f"QEMU could not start: {exc.output.strip()}",
                       0.0, time.time(), host)
    seconds = round(time.monotonic() - start, 2)
    if done.returncode == EXPECTED_EXIT:
        return ProbeResult(accel, True, f"probe guest ran and exited in {seconds} s", seconds,
                       time.time(), host)
    detail = (done.stderr or done.stdout).strip().splitlines()
    return ProbeResult(accel, False, f"QEMU exited {done.returncode}: {detail[-1] if detail else ''}",
                   seconds, time.time(), host)


BootProbe = Callable[[float], None]  # boots a real kernel under KVM within the limit, or raises


def _linux_stage(boot_probe: BootProbe, host: str) -> ProbeResult:
    """Boot the real kernel under KVM within PROBE_SECONDS; say why not if it fails."""
    start = time.monotonic()
    try:
        boot_probe(PROBE_SECONDS)
    except CommandError as exc:
        tail = exc.output.strip().splitlines()[-1:] or [""]
        why = f"QEMU exited {exc.returncode}: {tail[0][:200]}"
    except WatchbenchError as exc:
        why = str(exc).splitlines()[0][:200]
    else:
        seconds = round(time.monotonic() - start, 2)
        return ProbeResult(Accel.KVM, True, f"a Linux guest booted under KVM in {seconds} s", seconds,
                       time.time(), host)
    return ProbeResult(Accel.KVM, False, f"the boot sector ran, but a Linux guest did not boot under KVM "
                   f"within {PROBE_SECONDS:.0f} s: {why}", round(time.monotonic() - start, 2),
                   time.time(), host)


def kvm_verdict(cache_dir: Path, runner: Runner = default_runner,
                boot_probe: BootProbe | None = None, refresh: bool = False) -> ProbeResult:
    """The KVM verdict for this host, cached for a day (or until the host kernel changes).

    Only a verdict that includes the real-kernel stage (``boot_probe``) is cached.
    """
    path = cache_dir / "accel-kvm.json"
    if path.exists() and not refresh:
        try:
            cached = ProbeResult(**json.loads(path.read_text()))
            if cached.host == platform.release() and time.time() - cached.checked_at < VERDICT_TTL:
                return cached
        except (ValueError, TypeError):
            pass
    host = platform.release()
    if not os.path.exists("/dev/kvm"):
        verdict = ProbeResult(Accel.KVM, False, "/dev/kvm does not exist", 0.0, time.time(), host)
    else:
        verdict = probe(Accel.KVM, cache_dir / "probe", runner)
        if verdict.works and boot_probe is None:
            verdict.reason += "; the Linux boot stage was not run"
            return verdict
        if verdict.works:
            verdict = _linux_stage(boot_probe, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(verdict), indent=2) + "\n")
    return verdict


def resolve(requested: str, cache_dir: Path, runner: Runner = default_runner,
            boot_probe: BootProbe | None = None) -> tuple[Accel, str]:
    """(accelerator to use, why). ``auto`` picks KVM only when a Linux guest booted under it."""
    if requested not in (AUTO, *ACCELERATORS):
        raise InputError(f"unknown accelerator {requested!r}",
                         hint=f"use {AUTO}, {', '.join(ACCELERATORS)}")
    if requested in (Accel.TCG, Accel.ICOUNT):
        return Accel(requested), "requested"
    verdict = kvm_verdict(cache_dir, runner, boot_probe)
    if verdict.works:
        return Accel.KVM, verdict.reason
    if requested == Accel.KVM:
        raise InputError(f"KVM was requested but does not work here: {verdict.reason}",
                         hint="use --accel tcg (or icount for steadier timings)")
    return Accel.TCG, f"KVM unusable: {verdict.reason}"
