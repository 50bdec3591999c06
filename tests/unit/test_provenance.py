"""One provenance builder (suite.provenance.booted_on): a run's manifest and a check's
record take their shared fields from it with the keys they always had, and a shard's
fingerprint reads only keys a manifest has."""

from __future__ import annotations

from pathlib import Path

from watchbench.flows import shard
from watchbench.flows.check import CheckOptions, CheckResult, provenance
from watchbench.kernel.build import Kernel
from watchbench.settings import Settings
from watchbench.suite.check import Booted
from watchbench.suite.definition import Suite
from watchbench.suite.provenance import booted_on
from watchbench.suite.run import manifest

KERNEL = Kernel("k" * 16, Path("/k"), "6.12.0", "tree", "b" * 40, "v6.12", "h" * 40, "fix",
                "s" * 16, "", "c" * 16, "gcc 12", 1.0, 1)
ARGV = ["qemu-system-x86_64", "-accel", "tcg"]
SHARED = {"host", "cpu_model", "arch", "accel", "measures", "qemu_version", "qemu_argv",
          "qemu_argv_hash", "kernel_version", "kernel_key", "tree_base", "base_label",
          "series_name", "series_hash", "dirty_hash", "config_hash", "kconfig_add",
          "kernel_args", "compiler"}


def _manifest() -> dict:
    return manifest("run-1", Suite("quick", "q", 60.0), KERNEL, "tcg", ARGV, "label",
                    qemu="QEMU 8.2", initramfs="base.cpio.gz", suite_hash="h",
                    kernel_args=("nokaslr",), kconfig_add=("CONFIG_X=y",))


def _check_record() -> dict:
    booted = Booted([], [], "", None, "tcg", ARGV, 10.0, "QEMU 8.2")
    result = CheckResult([], [], [], KERNEL, booted, Path("k"), Path("j"), Path("s"),
                         Path("r"), 12.0)
    settings = Settings(kernel_args="nokaslr", kconfig_add=("CONFIG_X=y",))
    return provenance(result, CheckOptions(), settings)


def test_the_manifest_and_the_check_take_the_shared_fields_from_one_builder():
    shared = booted_on(KERNEL, "tcg", "QEMU 8.2", ARGV, kconfig_add=("CONFIG_X=y",),
                       kernel_args=("nokaslr",))
    assert set(shared) == SHARED
    meta, record = _manifest(), _check_record()
    assert {k: meta[k] for k in SHARED} == shared
    assert {k: record[k] for k in SHARED - {"qemu_argv_hash"}} == {
        k: v for k, v in shared.items() if k != "qemu_argv_hash"}
    assert list(meta) == ["run_id", "timestamp", *shared, "suite", "suite_hash", "initramfs",
                          "label"]
    assert set(record) == {"timestamp", "verdict", "exit_code", *SHARED - {"qemu_argv_hash"},
                           "stress_seconds", "console_log", "boot_seconds", "seconds",
                           "steps", "findings"}


def test_a_shard_fingerprint_reads_only_keys_every_manifest_has():
    meta = _manifest()
    assert set(shard.COMMON) | set(shard.HOST_BOUND) | set(shard.PER_KERNEL) <= set(meta)
