from pathlib import Path

import pytest

from watchbench.vm.accel import EXPECTED_EXIT, boot_sector, probe_argv
from watchbench.vm.qemu import Share, VmSpec, qemu_argv


def spec(**kw):
    base = dict(kernel=Path("/k/bzImage"), initrd=Path("/w/initrd.cpio.gz"),
                channel_file=Path("/w/channel.log"))
    base.update(kw)
    return VmSpec(**base)


def test_golden_tcg_with_shares():
    argv = qemu_argv(spec(shares=(Share("hostroot", Path("/"), readonly=True),
                                  Share("results", Path("/r")))))
    assert argv == [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
        "-smp", "2", "-m", "1024", "-nographic", "-no-reboot", "-nodefaults",
        "-serial", "mon:stdio", "-serial", "file:/w/channel.log",
        "-kernel", "/k/bzImage", "-initrd", "/w/initrd.cpio.gz",
        "-append", "console=ttyS0 panic=-1 oops=panic",
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,id=hostroot,"
                   "readonly=on",
        # writable: mapped-file, so guest-made links and specials are regular files here
        "-virtfs", "local,path=/r,mount_tag=results,security_model=mapped-file,"
                   "multidevs=remap,id=results",
    ]


def test_golden_icount_and_kvm():
    icount = qemu_argv(spec(accel="icount", cpus=1, memory_mb=512))
    assert icount[3:9] == ["-accel", "tcg", "-icount", "shift=0,sleep=off", "-cpu", "max"]
    assert icount[icount.index("-smp") + 1] == "1" and icount[icount.index("-m") + 1] == "512"
    kvm = qemu_argv(spec(accel="kvm", append=("quiet",)))
    assert kvm[3:5] == ["-accel", "kvm"]
    assert kvm[-1] == "console=ttyS0 panic=-1 oops=panic quiet"


def test_unknown_accelerator():
    with pytest.raises(ValueError, match="unknown accelerator"):
        qemu_argv(spec(accel="hvf"))


def test_probe_boot_sector_is_a_valid_mbr():
    sector = boot_sector()
    assert len(sector) == 512 and sector[-2:] == b"\x55\xaa"
    assert sector[:4] == bytes([0xB0, 0x21, 0xE6, 0xF4])  # mov al,0x21; out 0xf4,al
    assert EXPECTED_EXIT == 67
    argv = probe_argv(Path("/p.img"), "kvm")
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert "isa-debug-exit,iobase=0xf4,iosize=0x04" in argv
