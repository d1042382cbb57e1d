"""The upgrade step's speed-ups keep every check whole: concurrent checks, results in order,
schema-drift's fresh schema prepared during shutdown (or built by the check when it was not)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.db import checks, fresh, probing
from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, Outcome
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.upgrade import _migrate_and_check, preparing, run_checks, side_by_side
from grenadier.plugins.heat.project import HeatProject
from grenadier.project.api import Deployment
from grenadier.releases.release import Release
from grenadier.services.sqlite import SqliteDatabase
from grenadier.state import StateStore


def _check(name: str, fn: Any, *, concurrent: bool = True) -> Check:
    return Check(name, "post-migration", fn, concurrent=concurrent)


def test_concurrent_checks_run_together_and_report_in_order(tmp_path: Path) -> None:
    both = threading.Barrier(2, timeout=10)  # only passes when the two run at the same time

    def together(name: str) -> Any:
        return lambda _ctx: [Finding(name, "info", f"{name} saw {both.wait() >= 0}")]

    def serial(_ctx: CheckContext) -> list[Finding]:
        return [Finding("serial", "error", "bad")]

    chosen = [_check("b", together("b")), _check("serial", serial, concurrent=False),
              _check("a", together("a"))]
    result = StepResult("upgrade", Status.PASSED)
    run_checks(chosen, None, result)  # type: ignore[arg-type]
    assert [f.check for f in result.findings] == ["b", "serial", "a"]
    assert [m.split(":")[0] for m in result.messages] == ["check b", "check serial", "check a"]
    assert "FAILED" in result.messages[1]


def test_the_first_failure_is_raised_after_every_check_ended() -> None:
    ended: list[str] = []

    def call(check: Check) -> str:
        if check.name == "boom":
            raise RuntimeError("boom")
        threading.Event().wait(0.2)
        ended.append(check.name)
        return check.name

    chosen = [_check("boom", lambda _ctx: []), _check("slow", lambda _ctx: [])]
    with pytest.raises(RuntimeError, match="boom"):
        side_by_side(chosen, call)
    assert ended == ["slow"]


class _RecordingDb(SqliteDatabase):
    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.created: list[str] = []
        self.dropped: list[str] = []

    def create_database(self, database: str) -> None:
        self.created.append(database)

    def drop_database(self, database: str) -> None:
        self.dropped.append(database)


def _ctx(tmp_path: Path, version: str = "27.0.1") -> CheckContext:
    release = Release(version, version, tmp_path / f"venv-{version}", "pypi")
    return CheckContext(tmp_path, release, release, HeatProject(),
                        Deployment(tmp_path, _RecordingDb(tmp_path), 8004),
                        StateStore(tmp_path / "state.json"))


@pytest.mark.parametrize("fails", [False, True])
def test_schema_drift_drops_the_fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               fails: bool) -> None:
    # on a --db-url server it would stay behind
    ctx = _ctx(tmp_path)
    schema: dict[str, Any] = {"dialect": "sqlite", "tables": {}}

    def probe(*_: Any, **__: Any) -> dict[str, Any]:
        if fails:
            raise probing.ProbeFailed("probe failed")
        return {"compare-models": {"diffs": []}, "schema": schema}

    monkeypatch.setattr(probing, "probe", probe)
    monkeypatch.setattr(checks, "fresh_schema", lambda _ctx: schema)
    findings = checks.check_schema_drift(ctx)
    assert ctx.deployment.db.dropped == [fresh.FRESH_DB]  # type: ignore[attr-defined]
    assert [f.what for f in findings] == (["schema-drift could not run"] if fails else [])


def test_a_prepared_fresh_schema_is_used_and_its_database_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepared: dict[str, Any] = {"dialect": "sqlite", "tables": {"t": {"columns": {}}}}
    monkeypatch.setattr(fresh, "fresh_schema", lambda _ctx: prepared)
    ctx = _ctx(tmp_path)
    fresh.prepare_fresh_schema(ctx)
    assert ctx.deployment.db.dropped == [fresh.FRESH_DB]  # type: ignore[attr-defined]
    assert fresh.prepared_fresh_schema(ctx) == prepared
    # another target (a resumed run pointed elsewhere) never reuses it
    assert fresh.prepared_fresh_schema(_ctx(tmp_path, "28.0.0")) is None

    def no_fresh_db(_ctx: CheckContext) -> Any:
        raise AssertionError("the prepared schema must be used")

    monkeypatch.setattr(checks, "fresh_schema", no_fresh_db)
    monkeypatch.setattr(probing, "probe", lambda *_a, **_k: {
        "compare-models": {"diffs": []}, "schema": {"dialect": "sqlite", "tables": {}}})
    findings = checks.check_schema_drift(ctx)
    # the migrated database lacks the prepared schema's table: still found
    assert any("table t" in f.what for f in findings), findings


class _Run:
    """What ``preparing`` looks at in a RunContext."""

    def __init__(self, tmp_path: Path, checks: list[Check], *, db_started: bool) -> None:
        self.db_started = db_started
        self.store = StateStore(tmp_path / "state.json")
        for role in ("base", "target"):
            self.store.save("runner", f"release-{role}", {"label": role})
        self.checks = checks
        self.cctx = _ctx(tmp_path)

    def selected_checks(self, step: str) -> list[Check]:
        return [c for c in self.checks if c.step == step]

    def check_context(self) -> CheckContext:
        return self.cctx


def test_preparations_run_beside_shutdown_and_never_fail_it(tmp_path: Path) -> None:
    seen: list[str] = []

    def ok(_ctx: CheckContext) -> None:
        seen.append(threading.current_thread().name)

    def broken(_ctx: CheckContext) -> None:
        raise EnvironmentProblem("no database")

    chosen = [Check("a", "post-migration", lambda _c: [], prepare=ok),
              Check("b", "post-migration", lambda _c: [], prepare=broken)]
    result = StepResult("shutdown", Status.PASSED)
    with preparing(_Run(tmp_path, chosen, db_started=True), result):  # type: ignore[arg-type]
        seen.append("block")
    assert sorted(seen) == ["block", "prepare_0"]
    assert result.messages[0].startswith("prepare a: done in")
    assert result.messages[1] == ("prepare b: not done (no database); the upgrade step does it")
    # a database not started (e.g. --only shutdown of a resumed run): nothing is prepared
    result = StepResult("shutdown", Status.PASSED)
    with preparing(_Run(tmp_path, chosen, db_started=False), result):  # type: ignore[arg-type]
        pass
    assert result.messages == []


class _UpgradeRun:
    """What the upgrade step's migration asks of the run: its checks, db_sync, the flag."""

    def __init__(self, tmp_path: Path, checks: list[Check]) -> None:
        self.checks = checks
        self.flag = tmp_path / "upgrade-done"
        self.deployment = None
        self.project = self

    def selected_checks(self, step: str) -> list[Check]:
        return [c for c in self.checks if c.step == step]

    def db_sync(self, release: Release, deployment: object) -> Outcome:
        return Outcome(ExecuteRequest(["heat-manage", "db_sync"]), 0, "", "", 0.0, 2.0)

    def upgrade_done_flag(self) -> Path:
        return self.flag


def test_the_watch_is_told_the_migration_ended_before_the_checks_after_it(
        tmp_path: Path) -> None:
    seen: dict[str, bool] = {}
    run = _UpgradeRun(tmp_path, [])

    def capture(_ctx: CheckContext) -> None:
        seen["capture"] = run.flag.exists()

    def after(_ctx: CheckContext) -> list[Finding]:
        seen["check"] = run.flag.exists()
        return []

    run.checks = [Check("pre", "pre-migration", lambda _ctx: [], capture=None),
                  Check("post", "post-migration", after, capture=capture)]
    result = StepResult("upgrade", Status.PASSED)
    _migrate_and_check(run, _ctx(tmp_path), result)  # type: ignore[arg-type]
    # the capture saw the old database with the watch still going; the check, the flag
    assert seen == {"capture": False, "check": True}
    assert [m.split(":")[0] for m in result.messages] == [
        "check pre", "db_sync 27.0.1", "check post"]
