"""The rolling mode's pieces without Heat: workload records, a run context with two fake
release venvs, and the rolling step's report of given records."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from grenadier.model.result import Status, StepResult
from grenadier.phases import rolling
from grenadier.phases.rolling_kill import Kill
from grenadier.phases.rolling_report import Rolled, report_step
from grenadier.plugins.heat.project import HeatProject
from grenadier.project.api import Deployment
from grenadier.releases import Release
from grenadier.services.sqlite import SqliteDatabase
from grenadier.workload import DEFAULT_MIX, OpRecord, Workload, WorkloadLimits


def op_record(seq: int, step: str, latency: float, ok: bool = True, op: str = "show",
         error: str = "", engines: list[str] | None = None) -> OpRecord:
    return OpRecord(seq, op, f"wl-{seq:04d}", start=100.0, end=100.0 + latency, ok=ok,
                    error=error, step=step, end_step=step, engines=engines or [])


def _release(tmp_path: Path, version: str, rpc: str | None) -> Release:
    venv = tmp_path / version
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "heat-wsgi-api", "heat-engine", "heat-manage"):
        (venv / "bin" / name).write_text("")
    engine = venv / "lib" / "python3.11" / "site-packages" / "heat" / "engine"
    engine.mkdir(parents=True)
    if rpc is not None:
        (engine / "service.py").write_text(
            f"class EngineService(object):\n    RPC_API_VERSION = '{rpc}'\n")
    return Release(version, version, venv, "pypi")


def rolling_context(tmp_path: Path, target_rpc: str | None = "1.36") -> Any:
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True)
    releases = {"base": _release(tmp_path, "26.0.2", "1.36"),
                "target": _release(tmp_path, "27.0.1", target_rpc)}
    deployment = Deployment(run_dir, SqliteDatabase(run_dir), 18004, topology="split",
                            engines=2)
    # no store: the workload's records go to workload.json only
    return SimpleNamespace(project=HeatProject(), deployment=deployment, run_dir=run_dir,
                           release=releases.__getitem__)


def rolling_report(ctx: Any, records: list[OpRecord], order: list[str], *,
           in_progress: list[dict[str, Any]] | None = None,
           versions: dict[str, str] | None = None, killed: Kill | None = None) -> StepResult:
    """The rolling step's report of ``records`` (no held window), as the step makes it."""
    services = rolling._Services.of(ctx)
    workload = Workload(lambda: None, WorkloadLimits(), DEFAULT_MIX)  # type: ignore[arg-type,return-value]
    rolled = Rolled(workload, records, order, versions or {}, services.engine_logs(),
                    services.roles(), killed=killed)
    result = StepResult(rolling.STEP, Status.PASSED)
    report_step(result, rolled, in_progress or [], ctx.run_dir)
    return result
