"""What identifies a process after it started, and stopping everything a process left behind.

A PID alone is reused, and a command line changes: a ``#!`` script shows its interpreter
first, a wrapper execs another program. The kernel's own record does not change: a PID's start
time (clock ticks after boot) is fixed for the life of the process, and no live process can
have both the PID and the start time of one that ended. Every process grenadier starts leads
its own session and process group (``start_new_session``), whose id stays taken while any
member lives, even after the leader exited. So a process is known by (PID, start time), and
what it left is every process of its session or group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: seconds between two looks at /proc while waiting for processes to end
POLL = 0.1
#: after SIGKILL, how long to wait for the kernel to take the processes away
KILL_WAIT = 5.0


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` grenadier uses."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start: int

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` of a process, None when there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
        # the command name (field 2) is in parentheses and may hold spaces or ")"
        fields = text.rsplit(")", 1)[1].split()
        return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                        int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


def _all_live() -> list[ProcStat]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat.live:
                found.append(stat)
    return found


@dataclass(frozen=True)
class ProcessId:
    """A process as it was when it started: its PID and start time."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        stat = proc_stat(pid)
        return cls(pid, stat.start) if stat is not None else None

    def running(self) -> bool:
        """The process itself still runs (not a zombie, not another one with its PID)."""
        stat = proc_stat(self.pid)
        return stat is not None and stat.start == self.start and stat.live

    def members(self, live: Iterable[ProcStat] | None = None) -> list[ProcStat]:
        """The live processes of its session or process group: the process itself while it
        runs, and whatever it started, even after it ended."""
        stat = proc_stat(self.pid)
        if stat is not None and stat.start != self.start:
            # its PID was free to be reused: no process was left in its session or group
            return []
        return [p for p in (_all_live() if live is None else live)
                if self.pid in (p.session, p.pgrp)]

    def left(self, live: Iterable[ProcStat] | None = None) -> list[int]:
        """PIDs of :meth:`members`."""
        return sorted(p.pid for p in self.members(live))


def remove_empty(directory: Path | None) -> None:
    """Remove ``directory`` if it exists and is empty (what a stopped service left)."""
    if directory is not None:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _kill(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(ids: Sequence[ProcessId], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        live = _all_live()
        left = [pid for ident in ids for pid in ident.left(live)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL)


def stop_sessions(targets: Sequence[tuple[ProcessId, int]], timeout: float) -> list[ProcessId]:
    """Stop what each (process, stop signal) left: the stop signal to its process group while
    it runs (to every process left otherwise), SIGKILL to all that remain after ``timeout``.

    Returns the processes that had anything left to stop.
    """
    live = _all_live()
    found = [(ident, sig, ident.members(live)) for ident, sig in targets]
    found = [(ident, sig, members) for ident, sig, members in found if members]
    for ident, sig, members in found:
        if any(m.pgrp == ident.pid for m in members):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(ident.pid, sig)
        _kill((m.pid for m in members if m.pgrp != ident.pid), sig)
    ids = [ident for ident, _, _ in found]
    left = _wait_gone(ids, timeout)
    if left:
        _kill(left, signal.SIGKILL)
        _wait_gone(ids, KILL_WAIT)
    return ids
