"""The target's services started ahead (RunContext.prestart_project): held while the upgrade
step runs, let go by start-target; stopped when the run ends before that step."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from grenadier.host import free_port
from grenadier.phases.context import RunContext
from grenadier.services import ServiceSpec, Supervisor

#: stands for the launcher with --hold-until: waits for its go file, then is "ready"
HELD = ("import pathlib, sys, time\n"
        "go, ready = map(pathlib.Path, sys.argv[1:3])\n"
        "while not go.exists(): time.sleep(0.02)\n"
        "ready.touch(); time.sleep(60)\n")


class _Project:
    name = "heat"

    def __init__(self, tmp_path: Path, can_hold: bool = True) -> None:
        self.ready = tmp_path / "ready"
        self.can_hold = can_hold
        self.started: list[str] = []

    def tools(self, deployment: object) -> list[str]:
        return []

    def _spec(self, role: str, *args: str) -> ServiceSpec:
        return ServiceSpec(name=f"heat-{role}", cmd=[sys.executable, "-c", HELD, *args],
                           log=self.ready.with_name(f"heat-{role}.log"), ready=self.ready.exists)

    def held_services(self, release: object, deployment: object, role: str,
                      go: Path) -> list[ServiceSpec] | None:
        return [self._spec(role, str(go), str(self.ready))] if self.can_hold else None

    def services(self, release: object, deployment: object, role: str) -> list[ServiceSpec]:
        self.started.append(role)
        go = self.ready.with_name("go-now")
        go.touch()
        return [self._spec(role, str(go), str(self.ready))]


def _ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: _Project) -> RunContext:
    ctx = object.__new__(RunContext)  # only what starting and stopping Heat use
    ctx.run_dir, ctx.project, ctx.supervisor = tmp_path, project, Supervisor()  # type: ignore[assignment]
    ctx.deployment = SimpleNamespace(port=free_port())  # type: ignore[assignment]
    ctx.running_role, ctx.db_started, ctx.plane_started, ctx.keep_running = None, True, True, False
    ctx.held, ctx.warm_phases, ctx.probe_servers = {}, {}, {}
    monkeypatch.setattr(ctx, "release", lambda role: None)
    monkeypatch.setattr(ctx, "write_endpoint", lambda: None)
    return ctx


def test_the_held_target_starts_ahead_and_is_let_go_by_its_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _Project(tmp_path)
    ctx = _ctx(tmp_path, monkeypatch, project)
    try:
        ctx.prestart_project("target")
        (svc,) = ctx.supervisor.running()
        assert svc.held
        assert not project.ready.exists()  # it waits for its step
        ctx.start_project("target")
        assert project.ready.exists()
        assert ctx.running_role == "target"
        assert project.started == []  # the held process served, no second start
        assert ctx.supervisor.running() == [svc]
        assert not svc.held
    finally:
        ctx.close()


def test_a_held_target_whose_step_never_comes_is_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _ctx(tmp_path, monkeypatch, _Project(tmp_path))
    ctx.prestart_project("target")
    (svc,) = ctx.supervisor.running()
    ctx.keep_running = True  # even a run that keeps its services: nothing would let it go
    assert ctx.close() == []
    assert not svc.alive()


def test_a_project_that_cannot_hold_starts_in_its_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _Project(tmp_path, can_hold=False)
    ctx = _ctx(tmp_path, monkeypatch, project)
    try:
        ctx.prestart_project("target")
        assert ctx.supervisor.running() == []
        ctx.start_project("target")
        assert project.started == ["target"]
        assert project.ready.exists()
    finally:
        ctx.close()


def test_the_target_held_while_the_base_stops_is_left_alone_by_that_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _Project(tmp_path)
    ctx = _ctx(tmp_path, monkeypatch, project)
    try:
        base = ctx.supervisor.start(project.services(None, None, "base")[0])
        ctx.running_role = "base"
        project.ready.unlink()
        ctx.prestart_project("target")
        assert ctx.stop_project() == ["heat-base"]  # the shutdown step's stop
        assert not base.alive()
        (held,) = ctx.supervisor.running()
        assert held.held
        ctx.start_project("target")
        assert project.ready.exists()
        assert ctx.supervisor.running() == [held]
    finally:
        ctx.close()
