"""setup-base: database up, heat.conf from the base release, db_sync, base services up."""

from __future__ import annotations

from grenadier.errors import EnvironmentProblem
from grenadier.phases.context import RunContext
from grenadier.phases.result import Status, StepResult
from grenadier.state import RUNNER


def setup_base(ctx: RunContext) -> StepResult:
    """Configure and start the base release on a fresh database."""
    result = StepResult("setup-base", Status.PASSED)
    base = ctx.release("base")
    ctx.require_db()
    files = ctx.project.configure(base, ctx.deployment)
    result.messages.append(f"config: {', '.join(str(f) for f in files)}")
    outcome = ctx.project.db_sync(base, ctx.deployment)
    # nothing is upgraded yet: a base that cannot create its schema is not the upgrade's fault
    outcome.assert_success(f"the base release does not work here: its db_sync ({base.label})",
                           error=EnvironmentProblem)
    result.messages.append(f"db_sync {base.label}: {outcome.duration:.1f} s")
    ctx.start_project("base")
    svc = ctx.supervisor.running()[-1]
    result.messages.append(f"{svc.spec.name} ready after {svc.ready_after or 0:.1f} s")
    return result


def start_target(ctx: RunContext) -> StepResult:
    """Start the target release on the base release's configuration (new code, old config)."""
    result = StepResult("start-target", Status.PASSED)
    ctx.start_project("target")
    svc = ctx.supervisor.running()[-1]
    result.messages.append(f"{svc.spec.name} ready after {svc.ready_after or 0:.1f} s "
                           f"on {ctx.deployment.etc / 'heat.conf'}")
    # What the target sees before any post-upgrade test touches it, beside save-state's view.
    ctx.store.save(RUNNER, "inventory-after", ctx.project.inventory(ctx.deployment))
    return result
