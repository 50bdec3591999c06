"""The plugin's cache model (``wb-insns.c``, ``cache=on``): its two file formats read back,
and the model itself run on a tiny program under QEMU's user mode (``qemu-x86_64``, Debian
qemu-user, which ``./wb deps --tests`` installs), a few seconds.

tests/data/insns/stride-v1.txt and stride-v2.txt are the plugin's files of
tests/data/insns/stride.c (gcc -O2 -static) under ``qemu-x86_64 -plugin
wb-insns.so,out=...`` without and with ``cache=on``: recorded, so the parser is tested on
what the plugin really writes. The model against Cachegrind, pattern by pattern:
bench/scripts/cache_model_vs_cachegrind.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchbench.host.runner import default_runner
from watchbench.results.profile import CACHE_EVENTS, ProfileError, read_insns
from watchbench.results.profile import cache_totals as totals
from watchbench.vm import plugin
from watchbench.vm.cachemodel import DEFAULT, CacheConfig, Level, run_user

DATA = Path(__file__).resolve().parents[1] / "data" / "insns"
LINES_BIG, LINES_SMALL = (256 << 10) // 64, (16 << 10) // 64  # stride.c's arrays


def _pieces(region) -> list[tuple[int, int, int]]:
    return list(zip(region.vaddr.tolist(), region.insns.tolist(), region.other.tolist(),
                    strict=True))


def test_both_formats_read_and_agree_on_the_instructions():
    one, two = read_insns(DATA / "stride-v1.txt"), read_insns(DATA / "stride-v2.txt")
    assert one.cache is None and two.cache == DEFAULT.levels()
    assert one.exited and two.exited and len(one.programs) == len(two.programs) == 1
    for a, b in zip(one.programs[0].regions, two.programs[0].regions, strict=True):
        assert a.cache is None and b.cache is not None
        assert _pieces(a) == _pieces(b) and a.async_insns == b.async_insns
        assert set(b.cache.count) == set(CACHE_EVENTS) == set(b.cache.async_events)
    walks = [totals(r) for r in two.programs[0].regions]
    assert [w["d1"] for w in walks] == [LINES_BIG, LINES_SMALL - 1, 0]
    with pytest.raises(ProfileError, match="without cache=on"):
        totals(one.programs[0].regions[0])


def test_a_format_2_file_that_does_not_add_up_is_refused_and_a_torn_one_kept(tmp_path):
    text = (DATA / "stride-v2.txt").read_text()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(text.replace("R 2 20484 0 0 4096", "R 2 20484 0 0 4097"))
    with pytest.raises(ProfileError, match="cache events sum to"):
        read_insns(wrong)
    config = tmp_path / "config.txt"
    config.write_text(text.replace("C I1", "C X1"))
    with pytest.raises(ProfileError, match="configuration"):
        read_insns(config)
    narrow = tmp_path / "narrow.txt"
    narrow.write_text(text.replace("401570 5 255 0 0 255", "401570 5 255 0 0"))
    with pytest.raises(ProfileError, match="unexpected|columns"):
        read_insns(narrow)
    torn = tmp_path / "torn.txt"
    torn.write_text(text[:text.index("4015a0") + 20])  # killed mid-line
    insns = read_insns(torn)
    assert not insns.exited and len(insns.programs[0].regions) == 2
    header = text.index("R 1 1275 0 0 255 0 0 0 0 0 0")  # the third region's header line
    torn.write_text(text[:header + 20])  # killed while writing that header
    insns = read_insns(torn)
    assert not insns.exited and len(insns.programs[0].regions) == 2


@pytest.fixture(scope="module")
def stride(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stride") / "stride"
    default_runner.run(["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-o", out,
                        DATA / "stride.c"], timeout=120)
    return out


def test_a_strided_walk_misses_a_line_at_a_time_and_a_warm_one_not(test_settings, stride,
                                                                    tmp_path):
    """Under the default caches (D1 32 KiB): 256 KiB a line at a time misses once a line
    (the first line of a walk lies in the piece of the begin marker, uncounted like its
    instructions), the small array it evicted too, and the same array warm not at all;
    and with cache=off the file is format 1 with the very same instruction counts."""
    so = plugin.build(test_settings)
    on = read_insns(run_user(so, [stride], tmp_path / "on.txt"))
    big, cold, warm = (totals(r) for r in on.programs[0].regions)
    assert abs(big["d1"] - LINES_BIG) <= 2 and abs(cold["d1"] - LINES_SMALL) <= 2
    assert warm["d1"] == 0 and warm["dr"] >= LINES_SMALL - 1
    assert big["i1"] <= 2 and warm["i1"] == 0  # the loop stays in I1
    assert big["lld"] == 0  # memset left it in the 8 MiB LL
    off = read_insns(run_user(so, [stride], tmp_path / "off.txt", cache=None))
    assert (tmp_path / "off.txt").read_text().startswith("# wb-insns 1\nP\nR ")
    assert off.cache is None
    assert [_pieces(r) for r in off.programs[0].regions] == \
        [_pieces(r) for r in on.programs[0].regions]


def test_the_caches_are_configurable_and_a_bad_size_refused(test_settings, stride, tmp_path):
    """An LL smaller than the big array: its walk misses LL once a line too."""
    so = plugin.build(test_settings)
    small_ll = CacheConfig(Level(16 << 10, 4, 64), Level(16 << 10, 4, 64), Level(128 << 10, 8, 64))
    insns = read_insns(run_user(so, [stride], tmp_path / "small.txt", small_ll))
    assert insns.cache == small_ll.levels()
    big = totals(insns.programs[0].regions[0])
    assert abs(big["lld"] - LINES_BIG) <= 2
    out = default_runner.run(["qemu-x86_64", "-plugin", f"{so},out={tmp_path / 'x'},cache=on,"
                              "l1d=1000:3:64", stride], check=False)
    assert out.returncode != 0 and "SIZE:ASSOC:LINE" in out.stderr
    for bad in ("ll=1:2:9223372036854775808", "l1d=32768:8:8192", "ll=8589934592:16:64"):
        # ASSOC * LINE must neither wrap to 0 (a division by zero in QEMU) nor be huge
        out = default_runner.run(["qemu-x86_64", "-plugin", f"{so},out={tmp_path / 'x'},"
                                  f"cache=on,{bad}", stride], check=False)
        assert out.returncode != 0 and "SIZE:ASSOC:LINE" in out.stderr, (bad, out.stderr)
    out = default_runner.run(["qemu-x86_64", "-plugin", f"{so},out={tmp_path / 'x'},cache=yes",
                              stride], check=False)  # a typo never leaves the model off
    assert out.returncode != 0 and "unknown argument cache=yes" in out.stderr
