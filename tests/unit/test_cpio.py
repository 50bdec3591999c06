import gzip

from watchbench.guest import cpio
from watchbench.guest.initramfs import GuestCommand, job_script


def parse_newc(data: bytes):
    """An independent newc reader: (name, mode, size, rdevmajor, rdevminor, body)."""
    entries, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        body_start = (name_start + namesize + 3) & ~3
        body = data[body_start:body_start + size]
        pos = (body_start + size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries.append((name, fields[1], size, fields[9], fields[10], body))


def test_archive_roundtrip_and_determinism():
    entries = [cpio.directory("bin"), cpio.file("bin/x", b"hello", executable=True),
               cpio.symlink("bin/sh", "busybox"), cpio.char_device("dev/console", 5, 1)]
    blob = cpio.gzipped(entries)
    assert blob == cpio.gzipped(entries)  # byte-for-byte reproducible
    parsed = parse_newc(gzip.decompress(blob))
    assert [(n, oct(m), s) for n, m, s, *_ in parsed] == [
        ("bin", "0o40755", 0), ("bin/x", "0o100755", 5), ("bin/sh", "0o120777", 7),
        ("dev/console", "0o20600", 0)]
    assert parsed[1][5] == b"hello" and parsed[2][5] == b"busybox"
    assert parsed[3][3:5] == (5, 1)


def test_job_script_quotes_arguments_and_mounts_host_only_when_needed():
    guest_only = job_script([GuestCommand(("echo", "a b", "$HOME;rm"))], "/proj", "/v/bin:/bin")
    assert "wb_run 0 guest echo 'a b' '$HOME;rm'" in guest_only
    assert "mount_host" not in guest_only and "mount_results" in guest_only
    both = job_script([GuestCommand(("true",)), GuestCommand(("python3", "-V"), "host")],
                      "/my proj", "/v/bin")
    assert "mount_host" in both and "wb_run 1 host python3 -V" in both
    assert "WB_HOST_CWD='/my proj'" in both
