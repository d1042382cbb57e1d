"""Children die with grenadier, however it ends, SIGKILL included: a small watcher process.

Once the CLI calls :func:`enable`, every process :func:`grenadier.execute.run.popen` starts is
registered (PID, start time, stop signal) with a watcher process, started at the first
registration in a session of its own, that reads a pipe only grenadier holds. The kernel closes
that pipe when grenadier exits, however it exits; the watcher then stops every registered
process that still runs, with everything in its session: the stop signal first, SIGKILL after
:data:`GRACE` seconds. What grenadier stopped itself is gone by then; what it leaves running on
purpose (``--keep-running``) is forgotten first. A parent-death signal would not do: it fires
when the *thread* that started a child ends, and is cleared when a child changes user.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from grenadier.execute.processes import ProcessId, remove_empty, stop_sessions

#: seconds the watcher gives registered processes to stop before it kills them
GRACE = 10.0


class _Link:
    """grenadier's end of the pipe to its watcher."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = False
        self.pipe: IO[str] | None = None
        self.watcher: subprocess.Popen[bytes] | None = None


_LINK = _Link()


def enable() -> None:
    """From now on, every started process dies with this one (the CLI calls it once)."""
    _LINK.enabled = True


def register(pid: int, stop_signal: int = signal.SIGTERM, scratch_dir: Path | None = None) -> None:
    """Have the watcher stop ``pid`` (and its session) if grenadier ends while it runs, then
    remove ``scratch_dir`` if the process left it empty."""
    if not _LINK.enabled:
        return
    ident = ProcessId.of(pid)
    if ident is not None:
        _send(f"+ {ident.pid} {ident.start} {int(stop_signal)} {scratch_dir or ''}".rstrip())


def forget(pid: int) -> None:
    """``pid`` ended, or is left running on purpose: the watcher no longer stops it."""
    if _LINK.enabled:
        _send(f"- {pid}")


def _send(line: str) -> None:
    with _LINK.lock:
        try:
            if _LINK.pipe is None:
                _LINK.pipe = _start_watcher()
            _LINK.pipe.write(line + "\n")
            _LINK.pipe.flush()
        except OSError:
            # the watcher is gone (killed by hand): grenadier itself still stops what it
            # started; only the SIGKILL safety net is lost
            _LINK.enabled = False


def _start_watcher() -> IO[str]:
    read, write = os.pipe()  # both ends close-on-exec: no other child holds the write end
    try:
        _LINK.watcher = subprocess.Popen(
            [sys.executable, "-c", "from grenadier.execute.reaper import main; main()"],
            stdin=read,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(read)
    return os.fdopen(write, "w", encoding="utf-8")


def watch(lines: Iterable[str], grace: float = GRACE) -> list[ProcessId]:
    """The watcher: follow registrations until grenadier's end of the pipe closes, then stop
    what is still registered. Returns the processes that had anything left to stop."""
    registered: dict[int, tuple[ProcessId, int, Path | None]] = {}
    for line in lines:
        with contextlib.suppress(ValueError, IndexError):
            parts = line.rstrip("\n").split(" ", 4)  # the directory is last: it may hold blanks
            if parts[0] == "+":
                pid, start, sig = (int(part) for part in parts[1:4])
                directory = Path(parts[4]) if len(parts) == 5 else None
                registered[pid] = (ProcessId(pid, start), sig, directory)
            elif parts[0] == "-":
                registered.pop(int(parts[1]), None)
    stopped = stop_sessions([(ident, sig) for ident, sig, _ in registered.values()], grace)
    for _, _, directory in registered.values():
        remove_empty(directory)
    return stopped


def main() -> None:
    """The watcher process (its stdin is the pipe)."""
    # a terminal's Ctrl-C or hangup is for grenadier, which stops its services itself
    for ending in (signal.SIGINT, signal.SIGHUP):
        signal.signal(ending, signal.SIG_IGN)
    watch(sys.stdin)
