"""Replay console and channel logs recorded from real boots (see data/console/README.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes import ReplayRunner
from watchbench.guest.initramfs import GuestCommand
from watchbench.vm import console
from watchbench.vm.errors import GuestCrash, GuestError, GuestHang
from watchbench.vm.session import Guest, JobState

LOGS = Path(__file__).resolve().parents[1] / "data" / "console"


def lines(name: str) -> list[str]:
    return (LOGS / f"{name}.console.log").read_text(errors="replace").splitlines()


@pytest.mark.parametrize("name,kind,needle", [
    ("panic", "panic", "Kernel panic - not syncing: VFS"),
    ("oops", "oops", "BUG: kernel NULL pointer dereference"),
    ("warning", "warning", "WARNING: CPU"),
])
def test_root_cause_of_recorded_crashes(name, kind, needle):
    found = console.incidents(lines(name))
    cause = console.root_cause(found)
    assert cause.kind == kind and needle in cause.line
    assert needle in cause.excerpt


def test_oops_root_cause_precedes_its_panic():
    kinds = [i.kind for i in console.incidents(lines("oops"))]
    assert kinds[0] == "oops" and "panic" in kinds


@pytest.mark.parametrize("name", ["clean", "hang"])
def test_clean_and_hung_boots_have_no_incident(name):
    assert console.incidents(lines(name)) == []
    assert 0.5 < console.last_timestamp(lines(name)) < 5


def test_channel_replay_gives_outputs_and_exit_codes():
    commands = [GuestCommand(("echo", "hello from the guest")), GuestCommand(("sh", "-c", "exit 7")),
                GuestCommand(("sh", "-c", "..."))]
    state = JobState(commands, None)
    for line in (LOGS / "clean.channel.log").read_text().splitlines():
        state.feed(line)
    assert [r.returncode for r in state.results] == [0, 7, 0]
    assert state.results[0].output == ["hello from the guest"]
    assert state.release.startswith("6.12") and state.done_at > 1


def guest_for(tmp_path, runner):
    base = tmp_path / "base.cpio.gz"
    base.write_bytes(b"")
    return Guest(tmp_path / "bzImage", base, "tcg", tmp_path / "cache", runner=runner)


def test_guest_run_replays_a_clean_boot(tmp_path):
    guest = guest_for(tmp_path, ReplayRunner("clean", "clean.channel.log"))
    result = guest.run([GuestCommand(("echo", "x")), GuestCommand(("false",)), GuestCommand(("y",))],
                       timeout=30)
    assert [c.returncode for c in result.commands] == [0, 7, 0]
    assert result.guest_seconds == pytest.approx(1.43)


def test_guest_run_raises_oops_with_console_log(tmp_path):
    guest = guest_for(tmp_path, ReplayRunner("oops"))
    with pytest.raises(GuestCrash) as err:
        guest.run([GuestCommand(("true",))], timeout=30)
    assert err.value.kind == "oops" and err.value.log.read_text().count("\n") > 200


def test_guest_run_warning_allowed_or_not(tmp_path):
    runner = ReplayRunner("warning", "warning.channel.log")
    with pytest.raises(GuestCrash, match="warning"):
        guest_for(tmp_path, runner).run([GuestCommand(("true",))], timeout=30)
    result = guest_for(tmp_path, runner).run([GuestCommand(("true",))], timeout=30,
                                            allow_warnings=True)
    assert result.commands[0].returncode == 0 and result.warnings


def test_guest_run_kills_a_hang_and_names_the_command(tmp_path):
    runner = ReplayRunner("hang", "hang.channel.log", hang=True)
    start = time.monotonic()
    with pytest.raises(GuestHang, match="sleep 600") as err:
        guest_for(tmp_path, runner).run([GuestCommand(("sleep", "600"))], timeout=1.5)
    assert time.monotonic() - start < 10 and runner.spawned[0].killed
    assert "clocksource" in str(err.value)  # the last console line is quoted


def test_a_command_past_its_own_limit_is_killed_long_before_the_deadline(tmp_path):
    runner = ReplayRunner("hang", "hang.channel.log", hang=True)
    start = time.monotonic()
    with pytest.raises(GuestHang, match=r"command 0 \(sleep 600\) ran past its 1 s limit") as err:
        guest_for(tmp_path, runner).run([GuestCommand(("sleep", "600"), limit=1.0)],
                                        timeout=600)
    assert time.monotonic() - start < 10 and runner.spawned[0].killed
    assert err.value.commands[0].returncode is None  # what ran so far comes with it


def test_a_guest_whose_first_command_never_begins_is_killed_at_the_boot_limit(tmp_path):
    runner = ReplayRunner("panic", hang=True)  # a boot that never reaches its job
    start = time.monotonic()
    with pytest.raises(GuestHang, match="no command began within 1 s of boot"):
        guest_for(tmp_path, runner).run([GuestCommand(("true",))], timeout=600, boot_limit=1.0,
                                        judge=False)
    assert time.monotonic() - start < 10 and runner.spawned[0].killed


def test_guest_run_early_stop_is_an_error(tmp_path):
    runner = ReplayRunner("hang", "hang.channel.log")  # console ends, job never finished
    with pytest.raises(GuestError, match="stopped before finishing command 0"):
        guest_for(tmp_path, runner).run([GuestCommand(("sleep", "600"))], timeout=30)


def test_unjudged_runs_return_splats_and_stops_carry_what_was_done(tmp_path):
    """judge=False (inv check): a WARNING is returned, not raised; a guest that stops
    early raises with each command's result so far and the console lines."""
    runner = ReplayRunner("warning", "warning.channel.log")
    result = guest_for(tmp_path, runner).run([GuestCommand(("true",))], timeout=30,
                                            judge=False)
    assert result.commands[0].returncode == 0
    assert [w.kind for w in result.warnings][:1] == ["warning"]
    assert result.commands[0].console_begin > 0  # the console lines read when it began
    with pytest.raises(GuestError) as err:  # the recorded oops panics: the guest stops
        guest_for(tmp_path, ReplayRunner("oops")).run([GuestCommand(("true",))], timeout=30,
                                                      judge=False)
    assert err.value.commands[0].returncode is None
    assert any("NULL pointer" in line for line in err.value.console)


def test_boot_dirs_are_pruned_to_the_newest(tmp_path):
    import os

    from watchbench.vm.session import boot_dir

    boots = tmp_path / "boots"
    for i in range(45):
        old = boots / f"old-{i:02d}"
        (old / "results").mkdir(parents=True)
        (old / "console.log").write_text("x")
        os.utime(old, (1000 + i, 1000 + i))
    fresh = boot_dir(tmp_path)
    left = sorted(p.name for p in boots.iterdir())
    assert fresh.name in left and len(left) == 41
    assert "old-00" not in left and "old-44" in left


@pytest.mark.parametrize("line,found", [
    ("WARNING: possible circular locking dependency detected", True),
    ("WARNING: possible recursive locking detected", True),
    ("WARNING: inconsistent lock state", True),
    ("WARNING: bad unlock balance detected!", True),
    ("WARNING: held lock freed!", True),
    ("WARNING: lock held when returning to user space!", True),
    ("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", True),
    ("WARNING: possible irq lock inversion dependency detected", True),
    ("WARNING: suspicious RCU usage", True),
    ("INFO: trying to register non-static key.", True),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", True),
    ("clocksource: WARNING: clock skew too large", False),  # not lockdep's
    ("sd 0:0:0:0: WARNING: Block device not ready", False),
])
def test_lockdep_and_rcu_reports_are_incidents_other_warnings_are_not(line, found):
    assert bool(console.incidents([f"[    1.000000] {line}"])) is found
