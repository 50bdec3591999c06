"""The process runner, with real processes: output, errors, timeouts and group kills."""

import os
import sys
import time

import pytest

from watchbench.errors import CommandError, CommandTimeout
from watchbench.host.runner import Runner

PY = sys.executable


def test_run_captures_and_logs(tmp_path):
    log = tmp_path / "x.log"
    done = Runner().run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], log=log)
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
    assert "out" in log.read_text() and "err" in log.read_text()


def test_nonzero_raises_with_tail_and_log(tmp_path):
    log = tmp_path / "fail.log"
    with pytest.raises(CommandError) as err:
        Runner().run([PY, "-c", "print('boom'); raise SystemExit(3)"], log=log)
    assert err.value.returncode == 3 and "boom" in str(err.value) and str(log) in str(err.value)


def test_missing_program_is_a_command_error():
    with pytest.raises(CommandError, match="could not start"):
        Runner().run(["/nonexistent/program"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[1].split()[0] != "Z"


def test_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = (f"import subprocess,sys,time; p=subprocess.Popen([sys.executable,'-c',"
              f"'import time; time.sleep(60)']); open({str(pidfile)!r},'w').write(str(p.pid)); "
              f"time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(CommandTimeout):
        Runner().run([PY, "-c", script], timeout=2)
    assert time.monotonic() - start < 15
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "a grandchild outlived the killed command"


def test_stream_feeds_lines_and_keeps_log(tmp_path):
    seen = []
    log = tmp_path / "s.log"
    Runner().stream([PY, "-c", "print('a'); print('b')"], log=log, on_line=seen.append)
    assert seen == ["a", "b"] and log.read_text() == "a\nb\n"
    with pytest.raises(CommandError) as err:
        Runner().stream([PY, "-c", "print('bad'); raise SystemExit(2)"], log=log)
    assert err.value.returncode == 2 and "bad" in log.read_text()


def test_spawn_context_kills_on_exception(tmp_path):
    with pytest.raises(RuntimeError):
        with Runner().spawn([PY, "-c", "import time; time.sleep(60)"], log=tmp_path / "l") as proc:
            pid = proc.pid
            raise RuntimeError("caller failed")
    time.sleep(0.2)
    assert not _alive(pid)


@pytest.mark.parametrize("how", ["spawn", "run"])
def test_children_die_with_a_sigkilled_parent(tmp_path, how):
    """A real parent (as `inv` would be) starts a child through the Runner and is SIGKILLed:
    the child, in a session of its own, still gets SIGTERM and is gone within seconds."""
    import signal
    import subprocess

    pidfile = tmp_path / "child.pid"
    child = f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(120)"
    start = ("with Runner().spawn([sys.executable,'-c',CHILD]) as p: p.wait()" if how == "spawn"
             else "Runner().run([sys.executable,'-c',CHILD], timeout=300)")
    parent = subprocess.Popen([PY, "-c", "import sys\nfrom watchbench.host.runner import Runner\n"
                               f"CHILD={child!r}\n{start}\n"])
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and parent.poll() is None, "the child never started"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    assert _alive(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the child outlived its SIGKILLed parent"


def test_kill_all_stops_children_of_every_thread_and_what_they_would_start(tmp_path):
    import threading

    runner, errors = Runner(), []

    def boot():
        try:
            with runner.spawn([PY, "-c", "import time; time.sleep(60)"]) as proc:
                proc.wait()
            time.sleep(0.3)  # then it would start the next one
            runner.spawn([PY, "-c", "pass"])
        except CommandError as exc:
            errors.append(exc.message)

    worker = threading.Thread(target=boot)
    worker.start()
    time.sleep(0.5)
    start = time.monotonic()
    runner.kill_all()
    worker.join(10)
    runner.resume()
    assert not worker.is_alive() and time.monotonic() - start < 10
    assert errors and "this command is stopping" in errors[0]
    with runner.spawn([PY, "-c", "print('again')"]) as proc:  # resumed: children start again
        assert proc.wait() == 0


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no autogroups")
def test_a_niced_thread_starts_a_session_that_yields_as_much():
    """A child gets a session of its own, and with autogroups niceness only counts within
    a session: the child's session must carry the thread's niceness, or a build started
    at nice 19 (the suite's debug kernel, `nice wb build`) takes half the CPU."""
    import threading

    seen: dict[str, str] = {}

    def niced() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        seen["spawn"] = Runner().run(["cat", "/proc/self/autogroup"]).stdout
        with Runner().spawn(["cat", "/proc/self/autogroup"]) as proc:
            seen["stream"] = "".join(line for line in proc.lines() if line)

    thread = threading.Thread(target=niced)
    thread.start()
    thread.join()
    assert seen["spawn"].split()[-2:] == ["nice", "19"], seen
    assert seen["stream"].split()[-2:] == ["nice", "19"], seen
    plain = Runner().run(["cat", "/proc/self/autogroup"]).stdout
    assert plain.split()[-2:] == ["nice", "0"], plain
