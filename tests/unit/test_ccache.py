"""ccache's remote level: the setting checked before make, reachability, and hit rates
from ccache's own counters."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from watchbench.errors import ConfigError
from watchbench.kernel import ccache
from watchbench.kernel.kmake import KernelMake

DATA = Path(__file__).resolve().parents[1] / "data" / "ccache"


def test_remote_entries_as_ccache_takes_them():
    (redis, http, file) = ccache.parse_remote(
        "redis://user:secret@cache.example.org|connect-timeout=50 http://10.0.0.2:8080/cc "
        "file:///srv/ccache")
    assert (redis.scheme, redis.host, redis.port) == ("redis", "cache.example.org", 6379)
    assert redis.entry.endswith("|connect-timeout=50")  # ccache gets the attributes
    assert redis.shown == "redis://cache.example.org:6379"  # provenance never the password
    assert (http.port, http.path, http.shown) == (8080, "/cc", "http://10.0.0.2:8080/cc")
    assert file.shown == "file:///srv/ccache"
    assert ccache.parse_remote("  ") == ()


@pytest.mark.parametrize("text,needle", [
    ("ftp://cache.example.org", "no 'ftp' remote storage"),
    ("cache.example.org:6379", "no 'cache.example.org' remote storage"),
    ("redis://", "names no host"),
    ("redis://host:port", "is not a URL"),
    ("file://relative/dir", "absolute path"),
])
def test_a_bad_remote_is_named_with_what_ccache_speaks(text, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        ccache.parse_remote(f"redis://ok.example.org {text}")
    assert "watchbench.ccache_remote" in err.value.message
    assert err.value.hint


def test_reachability_is_a_real_connection(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (up,) = ccache.parse_remote(f"redis://127.0.0.1:{port}")
        assert ccache.unreachable(up) is None
    (down,) = ccache.parse_remote(f"redis://127.0.0.1:{port}")
    assert "refused" in (ccache.unreachable(down) or "").lower()
    (missing,) = ccache.parse_remote(f"file://{tmp_path}/none")
    assert "not a writable directory" in (ccache.unreachable(missing) or "")


def test_hit_rates_from_recorded_counters():
    stats = ccache.parse_stats((DATA / "print-stats.txt").read_text())
    assert stats.get("local_storage_hit") > 0 and stats.get("cache_miss") > 0
    before = ccache.Stats({"local_storage_hit": 10, "direct_cache_hit": 10, "cache_miss": 5})
    after = ccache.Stats({"local_storage_hit": 100, "local_storage_miss": 15,
                          "direct_cache_hit": 109, "cache_miss": 6,
                          "remote_storage_hit": 9, "remote_storage_miss": 1,
                          "remote_storage_timeout": 2})
    build = after - before
    assert build.cacheable == 100  # 99 found + 1 compiled
    assert build.local_rate == pytest.approx(0.9) and build.remote_rate == pytest.approx(0.9)
    assert build.describe() == ("ccache: 100 compiles, 90% from the local cache, 9% from the "
                                "remote (hit 90% of 10 lookups), 2 remote errors or timeouts")
    assert ccache.Stats({}).describe() == "ccache: no cacheable compiles"
    kept = build.provenance(ccache.parse_remote("redis://u:p@h"))
    assert kept["remote"] == ["redis://h:6379"] and kept["remote_rate"] == pytest.approx(0.9)


def test_make_gets_the_remote_only_with_ccache(tmp_path):
    with_cache = KernelMake(tmp_path, tmp_path / "o", ccache_dir=tmp_path / "cc",
                            ccache_remote="redis://h:1", ccache_reshare=True)
    assert with_cache.env()["CCACHE_REMOTE_STORAGE"] == "redis://h:1"
    assert with_cache.env()["CCACHE_RESHARE"] == "1"
    without = KernelMake(tmp_path, tmp_path / "o", ccache_dir=tmp_path / "cc",
                         ccache_remote="redis://h:1").env()
    assert without["CCACHE_NORESHARE"] == "1" and "CCACHE_RESHARE" not in without
    assert "CCACHE_REMOTE_STORAGE" not in KernelMake(tmp_path, tmp_path / "o",
                                                     ccache_remote="redis://h:1").env()
