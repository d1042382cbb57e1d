"""Fault injection: grenadier killed or interrupted, a service or the database dying, a taken
port, a read-only run directory. After each: no orphan process, one clear line, and the run
directory still explains what happened (report.json names the failing step)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from grenadier.model.steps import STEPS
from tests.conftest import CliResult, one_error_line
from tests.e2e.conftest import (
    BASE,
    TARGET,
    Run,
    footprint,
    grenadier,
    heat_processes,
    wait_left,
)

#: Runs the real CLI with one fault injected at the start of a step: the named service's
#: process group is SIGKILLed (its PID taken from the run's services.json), then the step runs.
INJECT = """
import json, os, signal, sys, time
import grenadier.runner.runner as runner
from grenadier.cli.main import main
step, service = sys.argv[1], sys.argv[2]
real = runner.STEP_FUNCTIONS[step]
def faulty(ctx):
    pids = json.loads((ctx.run_dir / "services.json").read_text())
    name = next(n for n in pids if n.startswith(service))
    os.killpg(pids[name]["pid"], signal.SIGKILL)
    time.sleep(1)
    return real(ctx)
runner.STEP_FUNCTIONS[step] = faulty
sys.exit(main(sys.argv[3:]))
"""


def _env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "GRENADIER_CACHE": str(cache_dir)}


def _as_cli(result: Run) -> CliResult:
    return CliResult(result.returncode, result.out, result.err)


def _start(workdir: Path, cache_dir: Path, *extra: str) -> subprocess.Popen[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "grenadier", "run", "--base", BASE,
                             "--target", TARGET, "--workdir", str(workdir), *extra],
                            cwd=workdir, env=_env(cache_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen[str], found: Callable[[], Path | None],
              what: str, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        path = found()
        if path is not None:
            return path
        time.sleep(0.1)
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"{what} never happened: {err[-2000:]}")


def _results(run_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data["namespaces"].get("runner", {}).get("results", {})  # type: ignore[no-any-return]


def _recorded_alive(run_dir: Path) -> list[str]:
    """Services of services.json whose recorded process (PID and start time) still runs."""
    from grenadier.execute.processes import ProcessId

    recorded = json.loads((run_dir / "services.json").read_text())
    return [name for name, info in recorded.items()
            if ProcessId(info["pid"], info["start"]).running()]


def _exited(result: Run) -> list[dict[str, str]]:
    """Timeline events of services that ended by themselves (or while starting)."""
    timeline: list[dict[str, str]] = result.report["timeline"]  # type: ignore[assignment]
    return [event for event in timeline if event["event"] == "exited"]


def _kill_leftovers(run_dir: Path) -> None:
    # Only if a test failed half-way: never leave a test's services behind for the next one.
    from grenadier.services.api import reap_recorded

    if (run_dir / "services.json").is_file():
        reap_recorded(run_dir / "services.json", timeout=5)


#: a user's pre-upgrade test that holds the first attempt's pytest until it is killed (so
#: that it certainly is alive for the resumed run to reap), and passes at once when resumed
HOLD_FIRST_ATTEMPT = """
import os
import time
from pathlib import Path

import pytest


@pytest.mark.pre_upgrade
def test_hold_the_first_attempt():
    marker = Path(__file__).with_name("first-attempt")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # the resumed attempt
    time.sleep(600)
"""


def _watcher(pid: int) -> int:
    """The PID of the watcher process grenadier ``pid`` started."""
    from grenadier.execute.processes import PROC

    for entry in PROC.iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == pid and b"grenadier.execute.reaper" in cmd:
            return int(entry.name)
    raise AssertionError(f"grenadier {pid} has no watcher process")


def test_sigkill_during_pre_upgrade_then_resume(workdir: Path, cache_dir: Path) -> None:
    """grenadier and its watcher SIGKILLed together (nothing can stop the services then): the
    services and the phase's pytest are orphaned; --resume must reap them, by what identifies
    them, and the run goes on to its end."""
    home = workdir / "sigkill"
    tests = home / "user-tests"
    tests.mkdir(parents=True)
    (tests / "test_hold.py").write_text(HOLD_FIRST_ATTEMPT)
    proc = _start(home, cache_dir, "--tests", str(tests))
    _wait_for(proc, lambda: next(iter(tests.glob("first-attempt")), None), "pre-upgrade")
    run_dir = next(home.glob("runs/*"))
    try:
        os.kill(_watcher(proc.pid), signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        orphans = _recorded_alive(run_dir)
        assert orphans, "with its watcher killed too, grenadier's services stay running"
        # and its pre-upgrade pytest (started ahead of its step: through the module that held
        # it), which services.json does not list
        assert any("-m pytest" in cmd or "-m grenadier.pytest_plugin.warm" in cmd
                   for cmd in heat_processes(run_dir))
        # the stack the kill left IN_PROGRESS is waited for 10 s, not 60
        resumed = grenadier("run", "--resume", str(run_dir), workdir=home, cache_dir=cache_dir,
                            env={"GRENADIER_SETTLE_SECONDS": "10"})
        said = resumed.out + resumed.err
        assert "stopped services left running by the previous run" in said
        assert "run child pid" in said  # the orphaned pre-upgrade pytest
        assert "Traceback" not in said
        status = resumed.status()
        assert list(status) == list(STEPS), status  # every step ran to its end
        # Known finding (see the robustness report): the stack the killed attempt had in
        # flight stays CREATE_IN_PROGRESS (its engine was killed) and post-upgrade's
        # test_no_stack_left_in_progress flags it; any other failure is a regression.
        failed = {step: s for step, s in status.items() if s != "passed"}
        print(f"resumed after SIGKILL: exit {resumed.returncode}, not passed: {failed}")
        if failed:
            assert resumed.returncode == 1, resumed.err[-3000:]
            assert failed == {"post-upgrade": "failed"}, failed
            assert "still IN_PROGRESS" in resumed.err, resumed.err[-3000:]
            post = resumed.steps()["post-upgrade"]["tests"]
            broken = {t["name"].rsplit("::", 1)[-1] for t in post if t["status"] == "failed"}
            assert broken == {"test_no_stack_left_in_progress"}, broken
        else:
            assert resumed.returncode == 0, resumed.err[-3000:]
        assert heat_processes(run_dir) == []
    finally:
        _kill_leftovers(run_dir)


def test_sigint_during_upgrade_then_resume(workdir: Path, cache_dir: Path) -> None:
    home = workdir / "sigint-upgrade"
    proc = _start(home, cache_dir, "--no-builtin-suite")

    def upgrading() -> Path | None:
        for run_dir in home.glob("runs/*"):
            if "during-upgrade" in _results(run_dir):
                return run_dir
        return None

    run_dir = _wait_for(proc, upgrading, "the upgrade step")
    try:
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        assert heat_processes(run_dir) == []
        first = Run(130, "", err, run_dir).status()
        interrupted = [step for step, status in first.items() if status == "interrupted"]
        assert interrupted in (["upgrade"], ["start-target"]), first
        assert first["teardown"] == "passed"
        resumed = grenadier("run", "--resume", str(run_dir), workdir=home, cache_dir=cache_dir)
        assert resumed.returncode == 0, resumed.err[-3000:]
        assert set(resumed.status().values()) == {"passed"}, resumed.status()
        assert heat_processes(run_dir) == []
    finally:
        _kill_leftovers(run_dir)


def _inject(home: Path, cache_dir: Path, step: str, service: str, *extra: str) -> Run:
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", INJECT, step, service, "run", "--base", BASE,
                           "--target", TARGET, "--workdir", str(home), *extra],
                          cwd=home, env=_env(cache_dir), capture_output=True, text=True,
                          timeout=900, check=False)
    run_dir = next(iter(sorted(home.glob("runs/*"))))
    return Run(proc.returncode, proc.stdout, proc.stderr, run_dir)


def test_heat_dies_during_pre_upgrade(workdir: Path, cache_dir: Path) -> None:
    result = _inject(workdir / "heat-dies", cache_dir, "pre-upgrade", "heat-base",
                     "--stop-after", "pre-upgrade")
    try:
        assert result.returncode != 0, result.out[-3000:]
        assert "Traceback" not in result.err
        status = result.status()
        assert status["pre-upgrade"] in ("failed", "error"), status
        assert status["teardown"] == "passed"
        assert "Connection refused" in result.err  # the console summary names the cause
        died = _exited(result)
        assert [e["service"] for e in died] == ["heat-base"], died
        assert "exit code -9" in died[0]["detail"]
        assert heat_processes(result.run_dir) == []
    finally:
        _kill_leftovers(result.run_dir)


def test_database_dies_during_save_state(workdir: Path, cache_dir: Path) -> None:
    result = _inject(workdir / "db-dies", cache_dir, "save-state", "postgresql",
                     "--no-builtin-suite", "--stop-after", "save-state")
    try:
        assert result.returncode == 3, result.out[-3000:] + result.err[-3000:]
        line = one_error_line(_as_cli(result))
        assert "pg_dump" in line, line
        status = result.status()
        assert status["save-state"] == "error", status
        assert status["teardown"] == "passed"
        died = _exited(result)
        assert [e["service"] for e in died] == ["postgresql"], died
        assert heat_processes(result.run_dir) == []
    finally:
        _kill_leftovers(result.run_dir)


@pytest.fixture(scope="module")
def installed_run(workdir: Path, cache_dir: Path) -> Run:
    """A run stopped after install: nothing is running, the port is already allocated."""
    (workdir / "installed").mkdir()
    first = grenadier("run", "--base", BASE, "--target", TARGET, "--no-builtin-suite",
                      "--stop-after", "install", workdir=workdir / "installed",
                      cache_dir=cache_dir)
    assert first.returncode == 0, first.err[-3000:]
    return first


def test_port_taken_between_allocation_and_start(installed_run: Run, workdir: Path,
                                                 cache_dir: Path) -> None:
    run_dir = installed_run.run_dir
    state = json.loads((run_dir / "state.json").read_text())
    port = state["namespaces"]["runner"]["port"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        result = grenadier("run", "--resume", str(run_dir), "--stop-after", "setup-base",
                           workdir=workdir, cache_dir=cache_dir)
    assert result.returncode == 3, result.err[-3000:]
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(_as_cli(result))
    assert result.status()["setup-base"] == "error"
    assert heat_processes(run_dir) == []


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


def test_read_only_run_directory(installed_run: Run, workdir: Path, cache_dir: Path) -> None:
    """The run directory turns read-only (a remounted or failing disk): nothing is left
    running, the state is intact, and the error is one line with exit code 3."""
    run_dir = installed_run.run_dir
    state = (run_dir / "state.json").read_bytes()
    if not _mount("--bind", str(run_dir), str(run_dir)):
        pytest.skip("needs mount privileges for a read-only bind mount")
    try:
        if not _mount("-o", "remount,ro,bind", str(run_dir)):
            pytest.skip("cannot remount the run directory read-only")
        result = grenadier("run", "--resume", str(run_dir), "--stop-after", "setup-base",
                           workdir=workdir, cache_dir=cache_dir)
    finally:
        subprocess.run(["umount", str(run_dir)], check=True)
    assert result.returncode != 0
    assert heat_processes(run_dir) == []
    assert (run_dir / "state.json").read_bytes() == state
    assert result.returncode == 3, result.err[-3000:]
    line = one_error_line(_as_cli(result))
    assert "Read-only file system" in line, line


def test_full_disk(workdir: Path, cache_dir: Path) -> None:
    """A workdir on a 2 MiB tmpfs: the run fails with one line (no space), exit 3."""
    home = workdir / "full"
    home.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(home)):
        pytest.skip("needs mount privileges for a tiny tmpfs")
    try:
        result = grenadier("run", "--base", BASE, "--target", TARGET, "--no-builtin-suite",
                           "--stop-after", "save-state", workdir=home, cache_dir=cache_dir)
        assert result.returncode == 3, result.out[-3000:] + result.err[-3000:]
        line = one_error_line(_as_cli(result))
        assert "failed" in line or "No space left on device" in line, line
        # the line names the step's log, which has the cause (when there was room to write it)
        logs = "".join(p.read_text(errors="replace")
                       for p in result.run_dir.glob("logs/*.log"))
        assert "No space left on device" in line + logs
        # the disk had room for the report: it names the step that hit the full disk
        assert "error" in result.status().values(), result.status()
        assert result.status()["teardown"] == "passed"
        assert heat_processes(result.run_dir) == []
    finally:
        subprocess.run(["umount", "--lazy", str(home)], check=True)


#: a user's pre-upgrade test that holds the run (services up) until grenadier is signalled
HOLD = """
import time
from pathlib import Path

import pytest


@pytest.mark.pre_upgrade
def test_hold():
    Path(__file__).with_name("held").touch()
    time.sleep(600)
"""
TOPOLOGIES = {"all-in-one": (), "split-rabbitmq": ("--bus", "rabbit", "--topology", "split")}
ENDINGS = ("SIGHUP", "SIGKILL", "SIGINT-in-teardown")


def _signal_until_done(proc: subprocess.Popen[str], how: str) -> tuple[str, str]:
    if how == "SIGINT-in-teardown":
        # Ctrl-C, then Ctrl-C again and again while grenadier stops its services
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
    else:
        proc.send_signal(getattr(signal, how))
    return proc.communicate(timeout=300)


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
@pytest.mark.parametrize("how", ENDINGS)
def test_no_process_of_a_run_outlives_grenadier(how: str, topology: str, workdir: Path,
                                                cache_dir: Path) -> None:
    """However grenadier ends (a closed terminal, SIGKILL, Ctrl-C repeated while it stops
    its services), no process of the run is left: none in the process groups and sessions
    its services and phase processes led, no port of the run still listening (and no socket
    directory of its servers left under /tmp)."""
    if topology != "all-in-one" and not shutil.which("epmd", path="/usr/bin:/usr/lib/erlang/bin"):
        pytest.skip("needs rabbitmq-server (see .ci/run)")
    home = workdir / f"{how}-{topology}"
    tests = home / "user-tests"
    tests.mkdir(parents=True)
    (tests / "test_hold.py").write_text(HOLD)
    proc = _start(home, cache_dir, "--no-builtin-suite", "--tests", str(tests),
                  *TOPOLOGIES[topology])
    _wait_for(proc, lambda: next(iter(tests.glob("held")), None), "pre-upgrade")
    run_dir = next(home.glob("runs/*"))
    try:
        print_ = footprint(run_dir)
        assert print_.left(), "nothing of the run was running to be left behind"
        assert print_.ports, "the run's ports were not found"
        assert print_.dirs, "the run directory is long: PostgreSQL's socket is under /tmp"
        _, err = _signal_until_done(proc, how)
        assert "Traceback" not in err, err[-3000:]
        if how == "SIGKILL":
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 130, err[-3000:]
            status = Run(130, "", err, run_dir).status()
            assert status["pre-upgrade"] == "interrupted", status
            assert status["teardown"] == "passed", status
        if how == "SIGINT-in-teardown":
            # a Ctrl-C arrived while the services were being stopped, and stopping went on
            assert "SIGINT: stopping the run's services first" in err, err[-3000:]
        assert wait_left(print_) == []
        assert heat_processes(run_dir) == []
    finally:
        proc.kill()
        proc.wait()
        _kill_leftovers(run_dir)
