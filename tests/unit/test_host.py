"""Host-side pieces: deps, the accelerator choice, and the CLI's error path."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import FakeRunner
from watchbench.errors import CommandTimeout, DepsError, InputError
from watchbench.host import deps
from watchbench.host.runner import default_runner
from watchbench.vm import accel

ROOT = Path(__file__).resolve().parents[2]


def test_deps_installs_only_the_missing(monkeypatch):
    monkeypatch.setattr(deps.os, "geteuid", lambda: 0)
    present = {"qemu-system-x86_64"}
    monkeypatch.setattr(deps.shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)
    needs = (deps.Need("qemu-system-x86", "qemu-system-x86_64"), deps.Need("ccache", "ccache"))
    runner = FakeRunner()
    with pytest.raises(DepsError, match="still missing: ccache"):
        deps.ensure(needs, runner)  # the fake "installs" nothing
    assert runner.calls[0][:4] == ["apt-get", "install", "-y", "--no-install-recommends"]
    assert runner.calls[0][4:] == ["ccache"]
    present.add("ccache")
    assert deps.ensure(needs, FakeRunner()) == []


def test_deps_without_root_or_sudo_says_the_command(monkeypatch):
    monkeypatch.setattr(deps.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(deps.shutil, "which", lambda name: None)
    with pytest.raises(DepsError) as err:
        deps.ensure((deps.Need("cpio", "cpio"),), FakeRunner())
    assert "apt-get install -y --no-install-recommends cpio" in str(err.value)


def test_real_host_has_the_pipeline_tools():
    assert deps.missing(deps.PIPELINE) == [], "run ./wb deps"


def test_probe_boot_sector_really_runs_under_tcg(tmp_path):
    verdict = accel.probe("tcg", tmp_path)
    assert verdict.works, verdict.reason


def test_auto_uses_kvm_only_after_a_linux_boot(tmp_path, monkeypatch):
    monkeypatch.setattr(accel.os.path, "exists", lambda p: True)
    monkeypatch.setattr(accel, "probe", lambda *a, **k: accel.ProbeResult("kvm", True, "sector ran", 5,
                                                                     time.time(), "h"))

    def hangs(limit):
        raise CommandTimeout(f"guest killed after {limit} s (deadline)")

    chosen, why = accel.resolve("auto", tmp_path, boot_probe=hangs)
    assert chosen == "tcg" and "did not boot under KVM" in why
    cached = json.loads((tmp_path / "accel-kvm.json").read_text())
    assert cached["works"] is False
    with pytest.raises(InputError, match="KVM was requested"):
        accel.resolve("kvm", tmp_path, boot_probe=hangs)
    (tmp_path / "accel-kvm.json").unlink()
    chosen, why = accel.resolve("auto", tmp_path, boot_probe=lambda limit: None)
    assert chosen == "kvm" and "booted under KVM" in why
    assert accel.resolve("icount", tmp_path) == ("icount", "requested")
    with pytest.raises(InputError):
        accel.resolve("hvf", tmp_path)


def test_cli_reports_bad_input_clearly_with_exit_2():
    done = default_runner.run([sys.executable, "-m", "invoke", "-r", str(ROOT), "patches.check",
                               "--series", "no-such-series"], check=False, cwd=ROOT)
    assert done.returncode == 2
    assert "error: no series directory" in done.stderr and "patches.list" in done.stderr
    listing = default_runner.run([sys.executable, "-m", "invoke", "-r", str(ROOT), "--list"], cwd=ROOT)
    for name in ("kernel.fetch", "patches.apply", "vm.run", "bench", "ci", "bisect", "report"):
        assert name in listing.stdout
