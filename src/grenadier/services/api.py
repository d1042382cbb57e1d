"""One way to run a service: start, readiness probe, graceful stop, crash stop, per-service log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import reaper
from grenadier.execute.api import ExecuteRequest
from grenadier.execute.processes import ProcessId, proc_stat, remove_empty, stop_sessions
from grenadier.execute.run import popen, tail
from grenadier.execute.signals import shielded
from grenadier.services import accounts

Probe = Callable[[], bool]


class ServiceFailedToStart(EnvironmentProblem):
    """A service exited while starting, or was not ready in time; ``log`` is what it wrote."""

    def __init__(self, message: str, *, service: str, log: Path,
                 returncode: int | None) -> None:
        super().__init__(message, hint=f"log: {log}")
        self.service = service
        self.log = log
        #: None: it was still running, not ready, when it was stopped
        self.returncode = returncode


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one long-running process and how to know it is ready."""

    name: str
    cmd: Sequence[str]
    log: Path
    ready: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    ready_timeout: float = 90.0
    stop_timeout: float = 20.0
    #: signal that asks the service to stop gracefully
    stop_signal: int = signal.SIGTERM
    #: a directory of its own it leaves empty when it ends (its socket's, under /tmp): removed
    #: then, by whoever stopped it (the supervisor, ``down``, the watcher)
    scratch_dir: Path | None = None
    #: files of the run that become ``user``'s own before it starts: what it writes (its
    #: ``--log-file``) or alone may read (a config holding passwords)
    owns: tuple[Path, ...] = ()
    #: what it reads outside the run (venvs, scripts, a user's files): ``user`` must reach them
    reads: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ServiceEvent:
    """A line of the run's timeline: a service started, became ready, stopped, crashed."""

    at: float
    service: str
    event: str
    detail: str = ""


@dataclass
class RunningService:
    spec: ServiceSpec
    proc: subprocess.Popen[str]
    started: float
    #: what identifies it after it started (None if it ended before it could be read)
    ident: ProcessId | None = None
    ready_after: float | None = None
    #: its exit is already on the timeline (it exited while starting)
    exit_reported: bool = False
    #: started ahead and waiting to be let go (:meth:`Supervisor.let_go`): not ready yet
    held: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


class Supervisor:
    """Owns every long-running process of a run; nothing it started outlives ``stop_all``."""

    def __init__(self, pid_file: Path | None = None) -> None:
        self._services: dict[str, RunningService] = {}
        self.events: list[ServiceEvent] = []
        self._pid_file = pid_file

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def note(self, service: str, event: str, detail: str = "") -> None:
        """Add a line to the run's timeline: a start or stop, or something else that happened."""
        self.events.append(ServiceEvent(time.time(), service, event, detail))

    def running(self) -> list[RunningService]:
        return [svc for svc in self._services.values() if svc.alive()]

    def died(self) -> list[str]:
        """Services started and not stopped by the supervisor that are no longer running
        (one still held is left to the step that lets it go: its start failed)."""
        return [name for name, svc in self._services.items() if not svc.alive() and not svc.held]

    def get(self, name: str) -> RunningService:
        return self._services[name]

    def start(self, spec: ServiceSpec, *, held: bool = False) -> RunningService:
        """Start ``spec`` and wait until its probe says ready; stop it again if it never is.

        ``held``: a service that waits, once started, for a sign of its step to go on (its
        slow imports done ahead): not waited for here, but by :meth:`let_go`.
        """
        if (name_running := self._services.get(spec.name)) and name_running.alive():
            raise EnvironmentProblem(f"service {spec.name} is already running")
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        accounts.hand_over(spec.user, spec.owns)
        accounts.reach(spec.user, spec.reads, spec.name)
        request = ExecuteRequest(spec.cmd, cwd=spec.cwd, env=spec.env, user=spec.user)
        with spec.log.open("a", encoding="utf-8") as log:
            log.write(f"$ {request.shell_cmd}\n")
            log.flush()
            proc = popen(request, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         stop_signal=spec.stop_signal, scratch_dir=spec.scratch_dir)
        running = RunningService(spec, proc, time.monotonic(), ProcessId.of(proc.pid),
                                 held=held)
        self._services[spec.name] = running
        self._write_pids()
        # a held service has only imported when its step comes: it starts (binds, serves,
        # touches the run's data) when let go, and the timeline says so
        self.note(spec.name, "held" if held else "start", f"pid {proc.pid}")
        if not held:
            self._ready_or_stopped(running)
        return running

    def let_go(self, name: str) -> RunningService:
        """Wait until a service started ``held`` (and since told to go on) is ready; its
        ready time and timeout count from now. Stopped again if it never is ready."""
        svc = self._services[name]
        svc.held, svc.started = False, time.monotonic()
        self.note(name, "start", f"pid {svc.proc.pid}, let go")
        self._ready_or_stopped(svc)
        return svc

    def _ready_or_stopped(self, svc: RunningService) -> None:
        try:
            self._wait_ready(svc)
        except BaseException:
            self.stop(svc.spec.name, crash=True)
            raise

    def _wait_ready(self, svc: RunningService) -> None:
        deadline = svc.started + svc.spec.ready_timeout
        while True:
            if not svc.alive():
                self.note(svc.spec.name, "exited", f"exit code {svc.proc.returncode}")
                svc.exit_reported = True
                raise ServiceFailedToStart(
                    f"{svc.spec.name} exited with code {svc.proc.returncode} while starting: "
                    f"{tail(svc.spec.log, 1)}", service=svc.spec.name, log=svc.spec.log,
                    returncode=svc.proc.returncode)
            with contextlib.suppress(Exception):
                if svc.spec.ready():
                    svc.ready_after = time.monotonic() - svc.started
                    self.note(svc.spec.name, "ready", f"after {svc.ready_after:.1f} s")
                    return
            if time.monotonic() > deadline:
                raise ServiceFailedToStart(
                    f"{svc.spec.name} not ready after {svc.spec.ready_timeout:.0f} s",
                    service=svc.spec.name, log=svc.spec.log, returncode=None)
            time.sleep(0.1)

    def stop(self, name: str, *, crash: bool = False, signalled: bool = False) -> int | None:
        """Stop one service: graceful (stop signal, SIGKILL after a timeout) or crash (KILL).

        ``signalled``: the stop signal was already sent (:meth:`stop_many`), only wait.
        """
        svc = self._services.get(name)
        if svc is None:
            return None
        if svc.alive():
            if not signalled:
                self._signal(svc, signal.SIGKILL if crash else svc.spec.stop_signal)
            try:
                svc.proc.wait(svc.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                self.note(name, "kill", f"still running after {svc.spec.stop_timeout:.0f} s")
                self._signal(svc, signal.SIGKILL)
                svc.proc.wait()
            self.note(name, "crash" if crash else "stop", f"exit code {svc.proc.returncode}")
        elif not svc.exit_reported:
            # it died by itself (killed, crashed): the timeline must say so, not "stop"
            self.note(name, "exited", f"exit code {svc.proc.returncode}, before it was stopped")
        # a service's own children (same process group) must not survive it
        self._signal(svc, signal.SIGKILL)
        reaper.forget(svc.pid)
        remove_empty(svc.spec.scratch_dir)
        del self._services[name]
        self._write_pids()
        return svc.proc.returncode

    @staticmethod
    def _signal(svc: RunningService, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(svc.pid, sig)

    def wait(self, name: str, timeout: float) -> int | None:
        """Wait for a service that ends by itself (a watcher); stop it after ``timeout``."""
        svc = self._services.get(name)
        if svc is None:
            return None
        try:
            svc.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.note(name, "timeout", f"still running after {timeout:.0f} s")
        return self.stop(name)

    def detach(self) -> list[str]:
        """Leave every service running (``--keep-running``); the PID file still lists them."""
        names = [svc.spec.name for svc in self.running()]
        if names:
            self.note("supervisor", "detach", ", ".join(names))
        for svc in self._services.values():
            reaper.forget(svc.pid)
        self._services.clear()
        return names

    def stop_many(self, names: list[str], *, crash: bool = False) -> None:
        """Stop several services together: all are asked at once, then each is waited for.

        Each engine may wait a grace period for its in-flight work: N engines then wait
        together, not one after the other.
        """
        chosen = [self._services[n] for n in names if n in self._services]
        with shielded():  # a second Ctrl-C must not leave half of them running
            for svc in chosen:
                if svc.alive():
                    self._signal(svc, signal.SIGKILL if crash else svc.spec.stop_signal)
            for svc in chosen:
                self.stop(svc.spec.name, crash=crash, signalled=True)

    def stop_all(self, *, crash: bool = False) -> None:
        """Stop every service, newest first (Heat before its database)."""
        with shielded():
            for name in reversed(list(self._services)):
                self.stop(name, crash=crash)

    def _write_pids(self) -> None:
        # Lets a later run (or a human) find processes left by a grenadier that was SIGKILLed.
        if self._pid_file is None:
            return
        data = {name: {"pid": s.pid, "start": s.ident.start if s.ident else None,
                       "pgid": s.pid, "cmd": list(map(str, s.spec.cmd)),
                       "scratch_dir": str(s.spec.scratch_dir) if s.spec.scratch_dir else None,
                       "stop_signal": int(s.spec.stop_signal), "stop_timeout": s.spec.stop_timeout}
                for name, s in self._services.items()}
        with contextlib.suppress(OSError):
            self._pid_file.write_text(json.dumps(data, indent=1), encoding="utf-8")

    def timeline(self) -> list[dict[str, object]]:
        return [asdict(event) for event in self.events]


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    # keep empty arguments: PostgreSQL is started with `-h ""`, recorded as such
    return [part.decode(errors="replace") for part in raw.removesuffix(b"\0").split(b"\0")] \
        if raw else []


def _recorded(info: object, timeout: float) -> tuple[ProcessId, int, float] | None:
    """The process a services.json entry names, its stop signal and stop timeout."""
    if not isinstance(info, dict):
        return None
    pid, start, cmd = info.get("pid"), info.get("start"), info.get("cmd")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if isinstance(start, int):
        ident: ProcessId | None = ProcessId(pid, start)
    elif isinstance(cmd, list) and cmd and _cmdline(pid) == cmd:
        # written before start times were recorded: the command line is all there is
        ident = ProcessId.of(pid)
    else:
        ident = None
    sig, wait = info.get("stop_signal", signal.SIGTERM), info.get("stop_timeout", timeout)
    if ident is None or not isinstance(sig, int) or not isinstance(wait, (int, float)):
        return None
    return ident, sig, float(wait)


def reap_recorded(pid_file: Path, timeout: float = 20.0) -> list[str]:
    """Stop services a previous grenadier left running (``--keep-running``, or it was killed).

    A service is known by its PID *and* start time, so a PID reused by an unrelated process is
    never touched, and one started through a ``#!`` script or a wrapper that execs (whose
    command line is no longer the one recorded) is still found. What it started goes with it
    (its session), even when it already ended itself.
    """
    try:
        recorded = json.loads(pid_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    valid = isinstance(recorded, dict)
    if not isinstance(recorded, dict):  # a garbled file: nothing can be matched safely
        recorded = {}
    # the clients first (a phase's pytest), then the services they talk to
    stopped = _reap_run_children(pid_file.parent.resolve(), timeout)
    for name, info in reversed(list(recorded.items())):
        found = _recorded(info, timeout)
        # each service's own stop signal and timeout, as its ServiceSpec declared them
        if found is not None and stop_sessions([(found[0], found[1])], found[2]):
            stopped.append(name)
        if isinstance(info, dict) and isinstance(info.get("scratch_dir"), str):
            remove_empty(Path(info["scratch_dir"]))
    if valid:  # a garbled file is left as found, for whoever looks into it
        with contextlib.suppress(OSError):
            pid_file.write_text("{}", encoding="utf-8")
    return stopped


#: set by the runner in the environment of each phase's pytest (suite.phase_env)
RUN_DIR_ENV, PHASE_ENV = "GRENADIER_RUN_DIR", "GRENADIER_PHASE"


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = proc_stat(pid)
        if stat is None:
            break
        pid = stat.ppid
    return pids


def _reap_run_children(run_dir: Path, timeout: float) -> list[str]:
    """Stop the children of a SIGKILLed grenadier that services.json does not list: a phase's
    pytest keeps creating stacks against the next Heat otherwise. One is known by what the
    runner gives it and a user's own shell or pytest does not have all of: the run directory
    as its working directory, and GRENADIER_RUN_DIR and GRENADIER_PHASE in its environment."""
    marker = f"{RUN_DIR_ENV}={run_dir}".encode()
    mine = _ancestors()
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(proc / "cwd")) != run_dir:
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
            if marker in env and any(v.startswith(f"{PHASE_ENV}=".encode()) for v in env):
                found.append(int(proc.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in found if Path(f"/proc/{pid}").exists()]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + min(timeout, 5.0)
        while time.monotonic() < deadline and any(_running(pid) for pid in alive):
            time.sleep(0.1)
    return [f"run child pid {pid}" for pid in found]


def _running(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z"
