"""Whatever grenadier started dies with it, however grenadier ends: SIGKILL included."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grenadier.execute.processes import ProcessId, proc_stat
from grenadier.execute.reaper import watch

PY = sys.executable
#: a stand-in for grenadier: it enables the watcher, starts a service (which starts a child of
#: its own) and a command, writes their PIDs, then waits to be killed
PARENT = """
import json, pathlib, subprocess, sys, time
from grenadier.execute import reaper
from grenadier.execute.api import ExecuteRequest
from grenadier.execute.run import popen
reaper.enable()
service = popen(ExecuteRequest([sys.executable, "-c",
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
    "print(c.pid, flush=True); time.sleep(300)"]), stdout=subprocess.PIPE)
grandchild = int(service.stdout.readline())
kept = popen(ExecuteRequest([sys.executable, "-c", "import time; time.sleep(300)"]))
reaper.forget(kept.pid)  # left running on purpose, as --keep-running does
pathlib.Path(sys.argv[1]).write_text(json.dumps(
    {"service": service.pid, "grandchild": grandchild, "kept": kept.pid,
     "watcher": reaper._LINK.watcher.pid}))  # started by the first registration
time.sleep(300)
"""


def _live(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.live


def _wait_gone(pids: list[int], timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(map(_live, pids)):
        time.sleep(0.1)
    return [pid for pid in pids if _live(pid)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_children_die_with_a_killed_parent(tmp_path: Path, sig: int) -> None:
    pids_file = tmp_path / "pids.json"
    parent = subprocess.Popen([PY, "-c", PARENT, str(pids_file)])
    try:
        deadline = time.monotonic() + 60
        while not pids_file.is_file():
            assert parent.poll() is None, "the parent ended before it was ready"
            assert time.monotonic() < deadline, "the parent never got ready"
            time.sleep(0.1)
        pids = json.loads(pids_file.read_text())
        assert all(_live(pids[k]) for k in ("service", "grandchild", "kept", "watcher"))
        parent.send_signal(sig)  # SIGTERM: a parent with no handler, as good as killed
        parent.wait(30)
        # the service and what it started are stopped; the process let go is not
        assert _wait_gone([pids["service"], pids["grandchild"], pids["watcher"]]) == []
        assert _live(pids["kept"])
    finally:
        parent.kill()
        parent.wait()
        if pids_file.is_file():
            with contextlib.suppress(ProcessLookupError):
                os.kill(json.loads(pids_file.read_text())["kept"], signal.SIGKILL)


def test_the_watcher_leaves_alone_what_ended_or_was_forgotten(tmp_path: Path) -> None:
    ended = subprocess.Popen([PY, "-c", "pass"], start_new_session=True)
    alive = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    forgotten = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
    try:
        idents = {p.pid: ProcessId.of(p.pid) for p in (ended, alive, forgotten)}
        ended.wait()
        scratch = tmp_path / "socket dir"  # a blank in it, as a path may have
        scratch.mkdir()
        lines = [f"+ {pid} {ident.start} {int(signal.SIGTERM)}\n"
                 for pid, ident in idents.items() if ident is not None and pid != alive.pid]
        lines.append(f"+ {alive.pid} {idents[alive.pid].start} {int(signal.SIGTERM)} {scratch}\n")
        lines += [f"- {forgotten.pid}\n", "garbled line\n", "+ 1 2\n"]
        stopped = watch(lines, grace=5)
        assert [ident.pid for ident in stopped] == [alive.pid]
        assert alive.wait(10) == -signal.SIGTERM
        assert not scratch.exists()  # left empty by what was stopped: removed
        assert forgotten.poll() is None
    finally:
        for proc in (alive, forgotten):
            proc.kill()
            proc.wait()
