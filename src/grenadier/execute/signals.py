"""The signals that end grenadier: SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal).

Each takes Ctrl-C's clean path once: the first raises KeyboardInterrupt in the main thread, so
the step stops and every service is stopped in ``finally``. Stopping services must not be cut
short, so any later signal is only noted, and one that arrives while :func:`shielded` code runs
(teardown, a supervisor stopping its services) waits until that code is done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class _State:
    installed: bool = False
    #: shielded blocks the main thread is in
    depth: int = 0
    #: an ending signal was turned into KeyboardInterrupt (or handed to a shield's owner)
    acted: bool = False
    #: signals received inside the current outermost shield
    pending: list[int] = field(default_factory=list)


_STATE = _State()


def install() -> None:
    """Handle the ending signals as described above (the CLI calls it once, main thread)."""
    for sig in ENDING:
        signal.signal(sig, _handle)
    _STATE.installed = True


def settled() -> None:
    """Everything is stopped and the exit code decided: from now on the ending signals are
    ignored (once Python starts to exit, it would let one kill the process, and the exit
    code would say "killed by a signal" instead of grenadier's own)."""
    if _STATE.installed:
        for sig in ENDING:
            signal.signal(sig, signal.SIG_IGN)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"grenadier: {text}\n".encode())


def _leave_terminal() -> None:
    """After a hangup the terminal is gone and writing to it fails: write nowhere instead,
    so that nothing on the way out (a progress line) stops the services' shutdown."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if os.isatty(fd):
                    os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _handle(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGHUP:
        _leave_terminal()
    if _STATE.depth:
        _STATE.pending.append(signum)
        _say(f"{signal.Signals(signum).name}: stopping the run's services first")
        return
    if not _STATE.acted:
        _STATE.acted = True
        raise KeyboardInterrupt
    _say(f"{signal.Signals(signum).name} ignored: still stopping the run's services "
         f"(they are stopped even if grenadier is killed: kill -9 {os.getpid()})")


@dataclass
class Shield:
    """What arrived while a :func:`shielded` block ran."""

    signals: list[int] = field(default_factory=list)


@contextlib.contextmanager
def shielded(*, reraise: bool = True) -> Iterator[Shield]:
    """Run the block to its end whatever ending signal arrives meanwhile.

    After the outermost block, a first signal that arrived in it raises KeyboardInterrupt
    (``reraise``) or is left to the caller, who reads :attr:`Shield.signals`. Signals only
    interrupt the main thread, and only once :func:`install` ran: elsewhere this does nothing.
    """
    shield = Shield()
    if not _STATE.installed or threading.current_thread() is not threading.main_thread():
        yield shield
        return
    _STATE.depth += 1
    try:
        yield shield
    finally:
        _STATE.depth -= 1
    if _STATE.depth == 0 and _STATE.pending:
        shield.signals, _STATE.pending = _STATE.pending, []
        first = not _STATE.acted
        _STATE.acted = True
        if first and reraise:
            raise KeyboardInterrupt
