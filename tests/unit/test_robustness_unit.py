"""Faults in the small: a state file corrupted mid-run, an unwritable run directory, a service
killed behind the supervisor's back, a garbled services.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem, ExitCode
from grenadier.services import ServiceSpec, Supervisor
from grenadier.services.api import reap_recorded
from grenadier.state import StateStore, StoreCorrupt

PY = sys.executable


def _sleeper(tmp_path: Path, name: str) -> ServiceSpec:
    flag = tmp_path / f"{name}.ready"
    code = f"import pathlib,time; pathlib.Path({str(flag)!r}).touch(); time.sleep(60)"
    return ServiceSpec(name=name, cmd=[PY, "-c", code], log=tmp_path / f"{name}.log",
                       ready=flag.exists, stop_timeout=5)


def test_state_corrupted_mid_run_is_a_clear_error_and_is_not_overwritten(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("runner", "port", 1234)
    # a disk hiccup or another tool truncates the file between two of the runner's writes
    (tmp_path / "state.json").write_text('{"format": "grenadier-state", "vers')
    with pytest.raises(StoreCorrupt) as caught:
        store.save("runner", "results", {"install": {}})
    assert "is corrupt" in caught.value.one_line()
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    # the evidence is kept as found, and no temporary file is left beside it
    assert (tmp_path / "state.json").read_text().endswith('"vers')
    assert not list(tmp_path.glob(".state-*"))


def test_state_store_namespaces_corrupted_mid_run(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("runner", "port", 1234)
    data = json.loads((tmp_path / "state.json").read_text())
    data["namespaces"] = ["not", "a", "mapping"]
    (tmp_path / "state.json").write_text(json.dumps(data))
    with pytest.raises(StoreCorrupt, match="has no namespaces"):
        store.get("runner", "port")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; see the e2e "
                    "read-only bind mount test")
def test_unwritable_run_directory_is_one_line(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("runner", "port", 1234)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(EnvironmentProblem, match="cannot write state store"):
            store.save("runner", "port", 4321)
    finally:
        tmp_path.chmod(0o700)
    assert store.get("runner", "port") == 1234


def test_write_failure_becomes_an_environment_problem(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC (a full disk) in the middle of a write: one line, old state intact."""
    store = StateStore(tmp_path / "state.json")
    store.save("runner", "port", 1234)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(EnvironmentProblem) as caught:
        store.save("runner", "port", 4321)
    assert "No space left on device" in caught.value.one_line()
    monkeypatch.undo()
    assert store.get("runner", "port") == 1234
    assert not list(tmp_path.glob(".state-*"))


def test_service_killed_behind_the_supervisors_back(tmp_path: Path) -> None:
    """A Heat process that dies by itself: stop_all still works and records how it ended."""
    pid_file = tmp_path / "services.json"
    sup = Supervisor(pid_file=pid_file)
    db = sup.start(_sleeper(tmp_path, "postgresql"))
    heat = sup.start(_sleeper(tmp_path, "heat-base"))
    os.killpg(heat.pid, signal.SIGKILL)
    heat.proc.wait(5)
    assert [s.spec.name for s in sup.running()] == ["postgresql"]
    sup.stop_all()
    assert db.proc.poll() is not None
    assert json.loads(pid_file.read_text()) == {}


@pytest.mark.parametrize("content", ["", "{half", "[1, 2]", '{"x": {"pid": "nope"}}'])
def test_reap_recorded_survives_a_garbled_pid_file(tmp_path: Path, content: str) -> None:
    pid_file = tmp_path / "services.json"
    pid_file.write_text(content)
    try:
        stopped = reap_recorded(pid_file, timeout=1)
    except Exception as exc:  # the assertion is that nothing escapes
        pytest.fail(f"reap_recorded raised {exc!r} on {content!r}")
    assert stopped == []


def test_reap_recorded_after_sigkilled_parent(tmp_path: Path) -> None:
    """What --resume finds after grenadier was SIGKILLed: services listed, still running."""
    pid_file = tmp_path / "services.json"
    sup = Supervisor(pid_file=pid_file)
    services = [sup.start(_sleeper(tmp_path, n)) for n in ("postgresql", "heat-base")]
    # the parent "dies": its supervisor never runs stop_all
    assert reap_recorded(pid_file, timeout=5) == ["heat-base", "postgresql"]
    for svc in services:
        svc.proc.wait(5)
    assert json.loads(pid_file.read_text()) == {}
    assert reap_recorded(pid_file) == []


def test_a_service_that_died_is_named_in_the_timeline(tmp_path: Path) -> None:
    sup = Supervisor(pid_file=tmp_path / "services.json")
    heat = sup.start(_sleeper(tmp_path, "heat-base"))
    os.killpg(heat.pid, signal.SIGKILL)
    heat.proc.wait(5)
    assert sup.died() == ["heat-base"]
    sup.stop_all()
    died = [e for e in sup.timeline() if e["event"] == "exited"]
    assert [(e["service"], e["detail"]) for e in died] == [
        ("heat-base", "exit code -9, before it was stopped")]
    assert sup.died() == []


def _orphan(run_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], cwd=run_dir,
                            env={**os.environ, **env}, start_new_session=True)


def test_reap_recorded_stops_an_orphaned_phase_pytest(tmp_path: Path) -> None:
    """A SIGKILLed grenadier's phase pytest is not in services.json but must not live on."""
    run_dir = tmp_path.resolve()
    (run_dir / "services.json").write_text("{}")
    phase = _orphan(run_dir, {"GRENADIER_RUN_DIR": str(run_dir),
                              "GRENADIER_PHASE": "pre-upgrade"})
    users_own = _orphan(run_dir, {"GRENADIER_RUN_DIR": str(run_dir)})  # no phase: a user's
    other_run = _orphan(run_dir, {"GRENADIER_RUN_DIR": str(run_dir / "other"),
                                  "GRENADIER_PHASE": "pre-upgrade"})
    try:
        time.sleep(0.3)
        assert reap_recorded(run_dir / "services.json", timeout=5) == [
            f"run child pid {phase.pid}"]
        assert phase.wait(5) == -signal.SIGTERM
        assert users_own.poll() is None
        assert other_run.poll() is None
    finally:
        for proc in (phase, users_own, other_run):
            proc.kill()
            proc.wait()


def test_a_garbled_pid_file_is_left_as_found(tmp_path: Path) -> None:
    (tmp_path / "services.json").write_text("{half")
    assert reap_recorded(tmp_path / "services.json", timeout=1) == []
    assert (tmp_path / "services.json").read_text() == "{half"
