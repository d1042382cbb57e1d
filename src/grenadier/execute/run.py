"""The one way grenadier runs a command. Never through a shell."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from grenadier.errors import EnvironmentProblem
from grenadier.execute import reaper
from grenadier.execute.api import ExecuteRequest, Outcome
from grenadier.host import SERVICE_GROUP

#: how long each escalation step (INT -> TERM -> KILL) waits for the child to go
STOP_STEP_SECONDS = 3.0


def _environment(request: ExecuteRequest) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in request.unset_env}
    env.update(request.env)
    return env


def _drain(stream: IO[str], sink: list[str], log: IO[str] | None, lock: threading.Lock) -> None:
    # A reader thread per stream, so that a chatty child never blocks on a full pipe.
    for line in stream:
        sink.append(line)
        if log is not None:
            with lock:
                log.write(line)
                log.flush()


@contextlib.contextmanager
def _open_log(request: ExecuteRequest) -> Iterator[IO[str] | None]:
    if request.log is None:
        yield None
        return
    request.log.parent.mkdir(parents=True, exist_ok=True)
    with request.log.open("a", encoding="utf-8") as log:
        log.write(f"$ {request.shell_cmd}\n")
        log.flush()
        yield log


def _identity(user: str | None) -> dict[str, object]:
    """Switch user *and* groups: keeping root's group would make group bits, not "other"
    bits, apply to the other user in root-owned 07x1 directories. The one group added is
    grenadier's service group, which may enter run directories (given at start: the system
    user's own membership is left as it is)."""
    if not user or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    try:
        extra = [grp.getgrnam(SERVICE_GROUP).gr_gid]
    except KeyError:
        extra = []
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": extra}


def popen(request: ExecuteRequest, *, stop_signal: int = signal.SIGTERM,
          scratch_dir: Path | None = None, **kwargs: object) -> subprocess.Popen[str]:
    """Start ``request`` in its own session, so that a terminal's Ctrl-C reaches only us.

    The process is registered with grenadier's watcher (:mod:`grenadier.execute.reaper`), so
    that it does not outlive grenadier: ``stop_signal`` is what the watcher asks it to stop
    with, ``scratch_dir`` an empty directory it then removes; call :func:`reaper.forget` once
    the process ended or is left running on purpose.
    """
    try:
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            [str(part) for part in request.cmd],
            cwd=request.cwd,
            env=_environment(request),
            text=True,
            start_new_session=True,
            **_identity(request.user),
            **kwargs,
        )
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"cannot run {request.cmd[0]}: not found") from exc
    except PermissionError as exc:
        raise EnvironmentProblem(f"cannot run {request.cmd[0]}: permission denied") from exc
    reaper.register(proc.pid, stop_signal, scratch_dir)
    return proc


def stop_process_group(proc: subprocess.Popen[str], *, first: int = signal.SIGINT) -> int:
    """Stop ``proc`` and its children: ``first`` signal, then TERM, then KILL."""
    sequence = [first, signal.SIGTERM, signal.SIGKILL]
    for sig in dict.fromkeys(sequence):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_STEP_SECONDS)
    return proc.wait()


def end_helper(proc: subprocess.Popen[str]) -> None:
    """End a helper that reads requests from its stdin: closing it is its cue to exit; one
    that does not is stopped with its children. grenadier's watcher forgets it either way."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    if proc.poll() is None:
        stop_process_group(proc, first=signal.SIGTERM)
    reaper.forget(proc.pid)


def run(request: ExecuteRequest) -> Outcome:
    """Run ``request`` to completion (or its timeout) and return what happened."""
    out: list[str] = []
    err: list[str] = []
    lock = threading.Lock()
    timed_out = False
    with _open_log(request) as log:
        started = time.monotonic()
        proc = popen(
            request,
            stdin=subprocess.PIPE if request.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        readers = [
            threading.Thread(target=_drain, args=(stream, sink, log, lock), daemon=True)
            for stream, sink in ((proc.stdout, out), (proc.stderr, err))
        ]
        for reader in readers:
            reader.start()
        try:
            if request.stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(request.stdin)
                    proc.stdin.close()
            try:
                proc.wait(request.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            # On timeout, Ctrl-C or any error: the child never outlives this call.
            if proc.poll() is None:
                stop_process_group(proc)
            reaper.forget(proc.pid)
            for reader in readers:
                reader.join(5)
        ended = time.monotonic()
        if log is not None:
            log.write(f"# exit {proc.returncode} after {ended - started:.2f} s\n")
    return Outcome(request, proc.returncode, "".join(out), "".join(err), started, ended, timed_out)


def tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
