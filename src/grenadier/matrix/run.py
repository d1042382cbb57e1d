"""Run upgrade paths side by side, each an isolated ``grenadier run`` child process.

Isolation comes from ``grenadier run`` itself: each child gets its own ``--workdir`` (so its own
run directory, database instance and services.json) and picks its own free Heat port. The
release cache is shared: the distinct releases are installed once, up front, so that children
find them ready instead of queueing on the cache's per-venv lock, and each child is given the
release that was installed (``openstack-heat==27.0.1``, not ``latest``), so that a release
published mid-matrix cannot make two paths test different things.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from grenadier.errors import ExitCode, GrenadierError, UsageError
from grenadier.execute import ExecuteRequest
from grenadier.execute.run import popen
from grenadier.matrix.paths import UpgradePath, check_args, short, slug
from grenadier.matrix.results import PathResult, read_steps, result_word, write_results
from grenadier.releases import Release, ReleaseCache, parse_spec
from grenadier.releases.constraints import AUTO
from grenadier.releases.spec import PACKAGE
from grenadier.runner.control import relabel
from grenadier.services.api import reap_recorded

Say = Callable[[str], None]
#: how a path's run is started; tests substitute a small script
CHILD_COMMAND: tuple[str, ...] = (sys.executable, "-m", "grenadier")
#: Measured on 2 cores (benchmarks/matrix.py): one run keeps 0.50-0.62 of a core busy over its
#: wall time (the rest is Heat's own 1 s sleeps and polls), so 2 cores hold 3 runs: the
#: three-path matrix took 98 s with 3 at once, 152 s with 2, 179 s one after the other.
CPU_PER_RUN = 0.65
#: memory kept per run: three runs peaked at 798 MiB PSS together; about 3x that per run
#: leaves room for bigger user suites and MariaDB
MEMORY_PER_RUN = 1 << 30
#: a child asked to stop stops its Heat and database first; after this long it is killed
INTERRUPT_GRACE = 90.0
POLL_SECONDS = 0.2
#: read by ``_memory_available``; tests point them at files of their own
MEMINFO = Path("/proc/meminfo")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def _cpus() -> int:
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _memory_available() -> int | None:
    """MemAvailable, capped by a cgroup v2 memory limit when we run in one (CI containers)."""
    available = None
    with contextlib.suppress(OSError, ValueError):
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError):
        limit = CGROUP_MEMORY_MAX.read_text().strip()
        if limit != "max":
            available = min(available or int(limit), int(limit))
    return available


def default_jobs(paths: int, cpus: int | None = None,
                 memory: int | None = None) -> tuple[int, str]:
    """How many runs this machine holds at once, and why (shown to the user)."""
    cpus = cpus or _cpus()
    memory = memory if memory is not None else _memory_available()
    by_cpu = max(1, int(cpus / CPU_PER_RUN))
    by_memory = max(1, memory // MEMORY_PER_RUN) if memory else by_cpu
    jobs = max(1, min(paths, by_cpu, by_memory))
    reason = (f"{cpus} CPUs / {CPU_PER_RUN} per run = {by_cpu}; "
              f"{(memory or 0) >> 20} MiB free / {MEMORY_PER_RUN >> 20} MiB per run = "
              f"{by_memory}; {paths} paths")
    return jobs, reason


@dataclass
class MatrixRequest:
    paths: Sequence[UpgradePath]
    directory: Path  # this matrix's own folder: one sub-folder per path
    jobs: int
    cache_dir: Path | None = None
    child: Sequence[str] = CHILD_COMMAND
    preinstall: bool = True
    interrupt_grace: float = INTERRUPT_GRACE
    #: every run's ``--constraints`` (and the pre-install's)
    constraints: str = AUTO
    #: one control run (base -> base) per distinct base, database and run options, shared
    #: by its paths: their findings are labelled by it (runner/control.py)
    control: bool = False


# -- releases --------------------------------------------------------------------------------

class Installed(NamedTuple):
    """What the pre-install came to: spec -> installed release, spec -> why it failed."""

    releases: dict[str, Release]
    failed: dict[str, str]

    def pinned(self, spec: str) -> str:
        """What a run is given for ``spec``: the installed version (or tree), once resolved."""
        release = self.releases.get(spec)
        if release is None:
            return spec
        return release.source if release.kind == "local" else f"{PACKAGE}=={release.version}"


def preinstall(paths: Sequence[UpgradePath], cache: ReleaseCache, logs: Path, jobs: int,
               say: Say) -> Installed:
    """Install every distinct release once, in parallel."""
    specs = list(dict.fromkeys(spec for p in paths for spec in (p.base, p.target)))
    installed = Installed({}, {})

    def ensure(spec: str) -> None:
        started = time.monotonic()
        log = logs / f"install-{slug(spec)}.log"
        try:
            release = cache.ensure(parse_spec(spec), log=log)
        except GrenadierError as exc:
            installed.failed[spec] = exc.one_line()
            say(f"release {spec}: FAILED to install: {exc.one_line()}")
            return
        installed.releases[spec] = release
        say(f"release {spec}: {release.label} ready ({time.monotonic() - started:.1f} s)")

    logs.mkdir(parents=True, exist_ok=True)
    # Each spec gets its own thread; two specs resolving to one venv meet on the cache's lock.
    with ThreadPoolExecutor(max_workers=max(1, min(len(specs), jobs + 1)),
                            thread_name_prefix="grenadier-install") as pool:
        list(pool.map(ensure, specs))
    return installed


# -- children --------------------------------------------------------------------------------

@dataclass
class _Child:
    index: int
    path: UpgradePath
    workdir: Path
    proc: subprocess.Popen[str]
    log: IO[str]
    started: float
    releases: tuple[str, str]


def _command(request: MatrixRequest, path: UpgradePath, workdir: Path,
             releases: tuple[str, str]) -> list[str]:
    # the path's own options first: what the matrix sets comes after them, and wins
    cmd = [*request.child, "run", *path.run_args(*releases), "--workdir", str(workdir)]
    if request.constraints != AUTO:
        cmd += ["--constraints", request.constraints]
    if request.cache_dir is not None:
        cmd += ["--cache-dir", str(request.cache_dir)]
    return cmd


def _start(request: MatrixRequest, index: int, path: UpgradePath,
           installed: Installed) -> _Child:
    workdir = request.directory / path.slug
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "grenadier.log"
    releases = (installed.pinned(path.base), installed.pinned(path.target))
    cmd = _command(request, path, workdir, releases)
    log = log_path.open("a", encoding="utf-8")
    log.write(f"$ {ExecuteRequest(cmd).shell_cmd}\n")
    log.flush()
    try:
        # Own session (popen): a terminal's Ctrl-C reaches only the matrix, which forwards it.
        proc = popen(ExecuteRequest(cmd), stdin=subprocess.DEVNULL, stdout=log,
                     stderr=subprocess.STDOUT)
    except BaseException:
        log.close()
        raise
    return _Child(index, path, workdir, proc, log, time.monotonic(), releases)


def _run_dir(workdir: Path) -> Path | None:
    runs = sorted(p for p in (workdir / "runs").glob("*") if p.is_dir())
    return runs[-1] if runs else None


def _collect(child: _Child, note: str = "") -> PathResult:
    child.log.close()
    run_dir = _run_dir(child.workdir)
    result = PathResult(child.path, child.proc.returncode, time.monotonic() - child.started,
                        run_dir, Path(child.log.name), note=note, releases=child.releases)
    if run_dir is not None:
        result.steps = read_steps(run_dir)
    if result.report() is None and not note:
        result.note = f"no report.json; see {child.log.name}"
    return result


def _stop_all(children: Sequence[_Child], grace: float, say: Say) -> None:
    """Ctrl-C: stop each run (it stops its own services), wait, then kill what remains.

    SIGTERM, not SIGINT: ``grenadier run`` treats both as Ctrl-C, but a process started with
    SIGINT ignored (a background job of a script) passes that on to its children.
    """
    for child in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGTERM)
    if children:
        say(f"stopping: waiting up to {grace:.0f} s for {len(children)} run(s) to stop "
            "their services")
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
            # its services live in their own sessions: find them through its services.json
            run_dir = _run_dir(child.workdir)
            left = reap_recorded(run_dir / "services.json") if run_dir else []
            say(f"{child.path.label}: killed after {grace:.0f} s; stopped {', '.join(left) or '-'}")


def _place(index: int, total: int) -> str:
    return f"{index}/{total}" if index else "control"


def _finished(child: _Child, results: list[PathResult], total: int, say: Say) -> None:
    result = _collect(child)
    results.append(result)
    where = result.report() or result.log
    say(f"[{_place(child.index, total)}] {result.result.upper():<11} {child.path.label} "
        f"in {result.duration:.1f} s  {where}")


# -- controls --------------------------------------------------------------------------------

#: run options that a control would share with its paths' runs: no control for them
SHARED = ("--db-url", "--bus-url", "--environment-from")


def controls_of(paths: Sequence[UpgradePath]) -> dict[UpgradePath, UpgradePath]:
    """Each path's control: base -> base on the same database with the same run options, one
    per distinct such triple. A path whose runs would share a database or bus has none."""
    found: dict[tuple[str, str, tuple[str, ...]], UpgradePath] = {}
    controls = {}
    for path in paths:
        if any(arg.split("=", 1)[0] in SHARED for arg in path.args):
            continue
        key = (path.base, path.db, path.args)
        if key not in found:
            name = f"control {short(path.base)} ({path.db})" + \
                (f" #{len(found) + 1}" if path.args else "")
            found[key] = UpgradePath(path.base, path.base, path.db, path.args, name)
        controls[path] = found[key]
    return controls


def _with_controls(todo: list[tuple[int, UpgradePath]],
                   controls: dict[UpgradePath, UpgradePath]) -> list[tuple[int, UpgradePath]]:
    """The paths to run, each control just before the first path that needs it (index 0): a
    path never waits for a control that has not started."""
    ordered: list[tuple[int, UpgradePath]] = []
    for index, path in todo:
        control = controls.get(path)
        if control is not None and (0, control) not in ordered:
            ordered.append((0, control))
        ordered.append((index, path))
    return ordered


def _compare(results: list[PathResult], controls: dict[UpgradePath, UpgradePath],
             say: Say) -> list[PathResult]:
    """The paths' results, each labelled by its control's (its run's reports rewritten)."""
    ran = {r.path: r for r in results if r.path in set(controls.values())}
    mine = [r for r in results if r.path not in ran]
    for result in mine:
        control = ran.get(controls.get(result.path))  # type: ignore[arg-type]
        if control is None or result.run_dir is None or control.run_dir is None:
            continue
        result.control = control
        judged = relabel(result.run_dir, control.run_dir, control.exit_code, say)
        if judged is None:
            continue
        if judged != result.exit_code:
            say(f"{result.path.label}: {result_word(result.exit_code or 0)} -> "
                f"{result_word(judged)} once compared with {control.path.label}")
        result.exit_code = int(judged)
        result.steps = read_steps(result.run_dir)
    return mine


def _schedule(request: MatrixRequest, todo: list[tuple[int, UpgradePath]],
              results: list[PathResult], installed: Installed, say: Say) -> None:
    running: list[_Child] = []
    total = len(request.paths)
    try:
        while todo or running:
            while todo and len(running) < request.jobs:
                index, path = todo.pop(0)
                running.append(_start(request, index, path, installed))
                say(f"[{_place(index, total)}] start {path.label}")
            time.sleep(POLL_SECONDS)
            for child in [c for c in running if c.proc.poll() is not None]:
                running.remove(child)
                _finished(child, results, total, say)
    except BaseException:
        # Ctrl-C, or a child that cannot start: no run may outlive the matrix
        _stop_all(running, request.interrupt_grace, say)
        for child in running:
            results.append(_collect(child, "interrupted"))
            results[-1].interrupted = True
        raise


def _preinstall(request: MatrixRequest, todo: list[tuple[int, UpgradePath]],
                results: list[PathResult], say: Say) -> Installed:
    """Install the releases; a path whose release failed is not run (exit 3, with why)."""
    cache = ReleaseCache(request.cache_dir, constraints=request.constraints)
    installed = preinstall(request.paths, cache,
                           request.directory / "logs", request.jobs, say)
    for index, path in list(todo):
        broken = [s for s in (path.base, path.target) if s in installed.failed]
        if broken:
            todo.remove((index, path))
            results.append(PathResult(path, int(ExitCode.ENVIRONMENT),
                                      note=f"{broken[0]}: {installed.failed[broken[0]]}"))
    return installed


def run_matrix(request: MatrixRequest, say: Say) -> list[PathResult]:
    """Run every path (up to ``jobs`` at once); results in the order the paths were given.

    Ctrl-C (or SIGTERM, which the CLI turns into one) stops every run cleanly and returns what
    there is: the runs cut short and those never started are marked ``interrupted``.
    """
    if request.jobs < 1:
        raise UsageError(f"--jobs {request.jobs}: must be at least 1")
    for path in request.paths:  # a bad option must not cost a single install
        check_args(list(path.args), path.label)
    request.directory.mkdir(parents=True, exist_ok=True)
    results: list[PathResult] = []
    todo = list(enumerate(request.paths, 1))
    installed = Installed({}, {})
    controls: dict[UpgradePath, UpgradePath] = {}
    with contextlib.suppress(KeyboardInterrupt):
        if request.preinstall:
            installed = _preinstall(request, todo, results, say)
        if request.control:
            controls = controls_of([path for _, path in todo])
            todo = _with_controls(todo, controls)
        _schedule(request, todo, results, installed, say)
    results = _compare(results, controls, say)
    done = {r.path for r in results}
    results.extend(PathResult(path, None, note="interrupted before it started",
                              interrupted=True)
                   for path in request.paths if path not in done)
    order = {path: n for n, path in enumerate(request.paths)}
    results.sort(key=lambda r: order[r.path])
    write_results(request.directory, results)
    return results
