"""QEMU command lines as data: a pure function from a spec to argv (golden-tested)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Accel(StrEnum):
    """What a guest runs under, and so what its timings measure: KVM (the host CPU),
    TCG (multi-threaded translation: parallel, noisy) or icount (one instruction = one
    ns of virtual time: near-deterministic, blind to caches and contention)."""

    KVM = "kvm"
    TCG = "tcg"
    ICOUNT = "icount"


ACCELERATORS = tuple(Accel)
# What a figure taken under each accelerator measures: said beside every headline figure
# and in the report's method section, because the three are not the same quantity.
MEASURES: dict[Accel, str] = {
    Accel.KVM: "real time on the host CPU",
    Accel.TCG: "emulation time: QEMU's translated code on the host CPU (parallel, noisy)",
    Accel.ICOUNT: "guest instructions (1 virtual ns = 1 instruction): blind to cache "
                  "misses, memory bandwidth, lock contention and true parallelism; guest "
                  "SMP is simulated round-robin",
}
# Not an accelerator but a request: vm.accel picks KVM only after a real boot under it.
AUTO = "auto"


@dataclass(frozen=True)
class ArchParams:
    """What differs per architecture (only x86_64 today; kunit_tool keeps these as data too)."""

    binary: str
    machine: str
    console: str
    channel: str
    extra_append: tuple[str, ...] = ()


ARCHS = {
    "x86_64": ArchParams("qemu-system-x86_64", "q35", "ttyS0", "ttyS1"),
}

ACCEL_ARGS = {
    Accel.KVM: ("-accel", "kvm"),
    Accel.TCG: ("-accel", "tcg,thread=multi"),
    # One instruction per ns of virtual time: timings repeat within ~0.6 % between boots.
    Accel.ICOUNT: ("-accel", "tcg", "-icount", "shift=0,sleep=off"),
}


@dataclass(frozen=True)
class Share:
    """A virtio-9p share: host ``path`` seen by the guest under ``tag``.

    A writable share is ``security_model=mapped-file``: what the guest makes there (a
    symlink, a fifo, a device node, an owner, a mode) is a regular file on the host with
    its metadata kept aside (``.virtfs_metadata/``), so nothing the guest creates can make
    the host follow it out of the share (results.rawcheck refuses such entries). A
    read-only share keeps the host's own modes (``none``)."""

    tag: str
    path: Path
    readonly: bool = False

    @property
    def security_model(self) -> str:
        return "none" if self.readonly else "mapped-file"


@dataclass(frozen=True)
class VmSpec:
    kernel: Path
    initrd: Path
    channel_file: Path
    accel: str = "tcg"
    cpus: int = 2
    memory_mb: int = 1024
    arch: str = "x86_64"
    shares: tuple[Share, ...] = ()
    append: tuple[str, ...] = field(default=())
    plugin: Path | None = None  # a TCG plugin (vm.plugin), the file it writes, and the
    plugin_out: Path | None = None  # kernel's function starts and interrupt entries
    plugin_symbols: tuple[Path, Path, Path] | None = None
    # More plugin arguments, after those: the cache model's (vm.cachemodel), none when off.
    plugin_args: tuple[str, ...] = ()
    # More QEMU options, last: the cache model's steady guest (vm.cachemodel.STEADY_QEMU).
    qemu_args: tuple[str, ...] = ()


def qemu_argv(spec: VmSpec) -> list[str]:
    """The full argv for booting ``spec``; the console is QEMU's stdio, the channel a file."""
    if spec.accel not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {spec.accel!r}; choose one of "
                         f"{', '.join(ACCELERATORS)}")
    arch = ARCHS[spec.arch]
    if any(ord(ch) < 32 for word in spec.append for ch in word):
        raise ValueError(f"a kernel parameter holds a control character: {spec.append!r}")
    append = [f"console={arch.console}", "panic=-1", "oops=panic", *arch.extra_append, *spec.append]
    argv = [
        arch.binary, "-machine", arch.machine, *ACCEL_ARGS[spec.accel], "-cpu", "max",
        "-smp", str(spec.cpus), "-m", str(spec.memory_mb),
        "-nographic", "-no-reboot", "-nodefaults",
        "-serial", "mon:stdio", "-serial", f"file:{spec.channel_file}",
        "-kernel", str(spec.kernel), "-initrd", str(spec.initrd),
        "-append", " ".join(append),
    ]
    if spec.plugin is not None:
        if spec.accel == Accel.KVM:
            raise ValueError("a TCG plugin needs TCG: it cannot run under kvm")
        symbols = "".join(f",{name}={path}" for name, path in
                          zip(("symbols", "irq", "softirq"), spec.plugin_symbols or (), strict=True))
        if any("," in arg or not arg for arg in spec.plugin_args):
            raise ValueError(f"a plugin argument is empty or holds a comma: {spec.plugin_args!r}")
        more = "".join(f",{arg}" for arg in spec.plugin_args)
        argv += ["-plugin", f"file={spec.plugin},out={spec.plugin_out}{symbols}{more}"]
    for share in spec.shares:
        # multidevs=remap: a share spanning several host filesystems (the host root: /proc
        # and /sys both have inode 1) gets inode numbers unique across them; without it the
        # guest's 9p client merges such inodes, and sysfs mounted on /host/sys lands on
        # /host/proc too.
        opts = (f"local,path={share.path},mount_tag={share.tag},"
                f"security_model={share.security_model},"
                f"multidevs=remap,id={share.tag}")
        argv += ["-virtfs", opts + (",readonly=on" if share.readonly else "")]
    return argv + list(spec.qemu_args)
