from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.services import ServiceSpec, Supervisor
from grenadier.services.api import reap_recorded

PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def _spec(tmp_path: Path, code: str, **kwargs: object) -> ServiceSpec:
    flag = tmp_path / "ready"
    return ServiceSpec(name=str(kwargs.pop("name", "svc")), cmd=[PY, "-c", code],
                       log=tmp_path / "svc.log", ready=flag.exists, **kwargs)  # type: ignore[arg-type]


READY = "import pathlib,sys,time; pathlib.Path(sys.argv[0] if False else '{flag}').touch(); "


def test_start_ready_and_graceful_stop(tmp_path: Path) -> None:
    code = READY.format(flag=tmp_path / "ready") + "print('up', flush=True); time.sleep(60)"
    with Supervisor(pid_file=tmp_path / "pids.json") as sup:
        svc = sup.start(_spec(tmp_path, code))
        assert svc.alive()
        assert json.loads((tmp_path / "pids.json").read_text())["svc"]["pid"] == svc.pid
        assert sup.stop("svc") == -15
    assert not _alive(svc.pid)
    assert "up" in (tmp_path / "svc.log").read_text()
    assert [e.event for e in sup.events] == ["start", "ready", "stop"]


def test_service_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    code = ("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            + READY.format(flag=tmp_path / "ready") + "time.sleep(60)")
    with Supervisor() as sup:
        sup.start(_spec(tmp_path, code, stop_timeout=0.5))
        assert sup.stop("svc") == -9
    assert "kill" in [e.event for e in sup.events]


def test_crash_stop_is_sigkill(tmp_path: Path) -> None:
    code = READY.format(flag=tmp_path / "ready") + "time.sleep(60)"
    with Supervisor() as sup:
        sup.start(_spec(tmp_path, code))
        assert sup.stop("svc", crash=True) == -9


def test_exit_during_start_names_the_log_line(tmp_path: Path) -> None:
    code = "import sys; print('port 1234 is in use'); sys.exit(3)"
    with Supervisor() as sup, pytest.raises(EnvironmentProblem, match="port 1234 is in use"):
        sup.start(_spec(tmp_path, code))


def test_never_ready_times_out_and_leaves_nothing(tmp_path: Path) -> None:
    code = "import time; time.sleep(60)"
    with Supervisor() as sup:
        with pytest.raises(EnvironmentProblem, match="not ready after"):
            sup.start(_spec(tmp_path, code, ready_timeout=0.5))
        assert sup.running() == []


def test_children_of_a_service_do_not_survive_it(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    code = ("import subprocess,sys,pathlib,time; "
            "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
            f"pathlib.Path('{child_pid}').write_text(str(p.pid)); "
            + READY.format(flag=tmp_path / "ready").split("; ", 1)[1] + "time.sleep(60)")
    with Supervisor() as sup:
        sup.start(_spec(tmp_path, code))
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_reap_recorded_stops_a_detached_service(tmp_path: Path) -> None:
    code = READY.format(flag=tmp_path / "ready") + "time.sleep(60)"
    sup = Supervisor(pid_file=tmp_path / "pids.json")
    svc = sup.start(_spec(tmp_path, code, name="heat-base"))
    assert sup.detach() == ["heat-base"]
    assert _alive(svc.pid)
    assert reap_recorded(tmp_path / "pids.json") == ["heat-base"]
    svc.proc.wait(5)
    assert not _alive(svc.pid)


def test_reap_recorded_ignores_a_reused_pid(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids.json"
    pid_file.write_text(json.dumps({"x": {"pid": os.getpid(), "cmd": ["not", "me"]}}))
    assert reap_recorded(pid_file) == []
    assert _alive(os.getpid())


def test_reap_recorded_matches_empty_arguments(tmp_path: Path) -> None:
    # PostgreSQL is started with `-h ""`: an empty argument must still match its record.
    code = READY.format(flag=tmp_path / "ready") + "time.sleep(60)"
    spec = _spec(tmp_path, code, name="postgresql")
    spec = ServiceSpec(name=spec.name, cmd=[*spec.cmd, ""], log=spec.log, ready=spec.ready)
    sup = Supervisor(pid_file=tmp_path / "pids.json")
    svc = sup.start(spec)
    sup.detach()
    assert reap_recorded(tmp_path / "pids.json") == ["postgresql"]
    svc.proc.wait(5)


def test_reap_recorded_stops_a_service_started_through_a_script(tmp_path: Path) -> None:
    """A ``#!`` script (heat-engine, heat-wsgi-api, RabbitMQ's wrapper) shows its interpreter
    first in /proc/PID/cmdline: the recorded command line never matches it, the start time
    does."""
    script = tmp_path / "heat-engine"
    script.write_text(f"#!{PY}\nimport pathlib, time\n"
                      f"pathlib.Path({str(tmp_path / 'ready')!r}).touch()\ntime.sleep(60)\n")
    script.chmod(0o755)
    sup = Supervisor(pid_file=tmp_path / "pids.json")
    svc = sup.start(ServiceSpec(name="heat-base-engine-1", cmd=[str(script)],
                                log=tmp_path / "svc.log", ready=(tmp_path / "ready").exists))
    sup.detach()
    recorded = json.loads((tmp_path / "pids.json").read_text())["heat-base-engine-1"]
    assert recorded["cmd"] == [str(script)]
    assert Path(f"/proc/{svc.pid}/cmdline").read_bytes().split(b"\0")[0] == PY.encode()
    assert reap_recorded(tmp_path / "pids.json") == ["heat-base-engine-1"]
    svc.proc.wait(5)
    assert not _alive(svc.pid)


def test_reap_recorded_leaves_a_pid_with_another_start_time_alone(tmp_path: Path) -> None:
    code = READY.format(flag=tmp_path / "ready") + "time.sleep(60)"
    sup = Supervisor(pid_file=tmp_path / "pids.json")
    svc = sup.start(_spec(tmp_path, code))
    sup.detach()
    data = json.loads((tmp_path / "pids.json").read_text())
    data["svc"]["start"] += 1  # what a reused PID looks like: same number, later start
    (tmp_path / "pids.json").write_text(json.dumps(data))
    try:
        assert reap_recorded(tmp_path / "pids.json") == []
        assert _alive(svc.pid)
    finally:
        svc.proc.kill()
        svc.proc.wait()


def test_reap_recorded_stops_what_a_service_left_after_it_ended(tmp_path: Path) -> None:
    """A service that exited (e.g. killed alone) but whose child still runs: the child still
    belongs to its session and is stopped."""
    child_pid = tmp_path / "child.pid"
    code = ("import subprocess,sys,pathlib,time; "
            "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
            f"pathlib.Path('{child_pid}').write_text(str(p.pid)); "
            + READY.format(flag=tmp_path / "ready").split("; ", 1)[1] + "time.sleep(60)")
    sup = Supervisor(pid_file=tmp_path / "pids.json")
    svc = sup.start(_spec(tmp_path, code))
    sup.detach()
    os.kill(svc.pid, 9)
    svc.proc.wait(5)
    child = int(child_pid.read_text())
    assert _alive(child)
    assert reap_recorded(tmp_path / "pids.json") == ["svc"]
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_a_services_scratch_dir_is_removed_once_it_ended_empty(tmp_path: Path) -> None:
    """Its socket's directory under /tmp: removed by whoever stops the service (the supervisor,
    or down / --resume), unless something is still in it."""
    code = READY.format(flag=tmp_path / "ready") + "time.sleep(60)"
    spec = _spec(tmp_path, code)
    for stop in ("supervisor", "down", "not empty"):
        scratch = tmp_path / f"scratch-{stop}"
        scratch.mkdir()
        if stop == "not empty":
            (scratch / ".s.PGSQL.5432").touch()  # a killed server's stale socket
        sup = Supervisor(pid_file=tmp_path / "pids.json")
        sup.start(ServiceSpec(name="svc", cmd=spec.cmd, log=spec.log, ready=spec.ready,
                              scratch_dir=scratch))
        if stop == "supervisor":
            sup.stop("svc")
        else:
            sup.detach()
            assert reap_recorded(tmp_path / "pids.json") == ["svc"]
        assert scratch.exists() is (stop == "not empty"), stop


HELD = ("import pathlib,time; go = pathlib.Path('{go}')\n"
        "while not go.exists(): time.sleep(0.02)\n"
        "{then}")


def test_a_held_service_is_waited_for_only_once_let_go(tmp_path: Path) -> None:
    go, flag = tmp_path / "go", tmp_path / "ready"
    code = HELD.format(go=go, then=f"pathlib.Path('{flag}').touch(); time.sleep(60)")
    with Supervisor() as sup:
        svc = sup.start(_spec(tmp_path, code), held=True)  # returns although not ready
        assert svc.alive()
        assert svc.held
        assert not flag.exists()
        assert [e.event for e in sup.events] == ["held"]
        go.touch()
        assert sup.let_go("svc") is svc
        assert flag.exists()
        assert not svc.held
        assert [e.event for e in sup.events] == ["held", "start", "ready"]


def test_a_held_service_that_dies_fails_its_start_not_the_step_before(tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = HELD.format(go=go, then="print('import failed', flush=True); raise SystemExit(1)")
    with Supervisor() as sup:
        sup.start(_spec(tmp_path, code), held=True)
        go.touch()
        time.sleep(0.5)
        assert sup.died() == []  # still held: the step that lets it go reports it
        with pytest.raises(EnvironmentProblem, match="exited with code 1 while starting"):
            sup.let_go("svc")
        assert sup.running() == []
        assert sup.died() == []
