"""A process is known by its PID and start time; what it leaves is its session."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from grenadier.execute.processes import ProcessId, proc_stat, stop_sessions

PY = sys.executable
#: a leader that starts a child in its session, writes the child's PID, then sleeps or exits
LEADER = """
import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
if sys.argv[2] == "stay":
    time.sleep(120)
"""


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = proc_stat(pid)
        if stat is None or not stat.live:
            return True
        time.sleep(0.05)
    return False


def _leader(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], int]:
    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen([PY, "-c", LEADER, str(pid_file), mode], start_new_session=True)
    deadline = time.monotonic() + 30
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the leader never started its child"
        time.sleep(0.05)
    return proc, int(pid_file.read_text())


def test_a_process_is_its_pid_and_start_time(tmp_path: Path) -> None:
    proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        ident = ProcessId.of(proc.pid)
        assert ident is not None
        assert ident.running()
        assert ident.left() == [proc.pid]
        # the same PID with another start time is another process: never touched
        other = ProcessId(proc.pid, ident.start + 1)
        assert not other.running()
        assert other.left() == []
        assert stop_sessions([(other, signal.SIGTERM)], 1) == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_what_a_process_started_is_stopped_with_it(tmp_path: Path) -> None:
    proc, child = _leader(tmp_path, "stay")
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    assert sorted(ident.left()) == sorted([proc.pid, child])
    assert stop_sessions([(ident, signal.SIGTERM)], 10) == [ident]
    assert proc.wait(10) == -signal.SIGTERM
    assert _gone(child)


def test_the_children_of_a_process_that_ended_are_still_found(tmp_path: Path) -> None:
    """The leader exits (a wrapper, a daemonising script): its session id stays taken while
    its child lives, so the child is still known to belong to it."""
    proc, child = _leader(tmp_path, "exit")
    ident = ProcessId.of(proc.pid)
    proc.wait(30)
    assert ident is not None
    assert not ident.running()
    assert ident.left() == [child]
    assert stop_sessions([(ident, signal.SIGTERM)], 10) == [ident]
    assert _gone(child)


def test_a_process_ignoring_its_stop_signal_is_killed(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)")
    proc = subprocess.Popen([PY, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline()
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    stop_sessions([(ident, signal.SIGTERM)], 0.5)
    assert proc.wait(10) == -signal.SIGKILL
