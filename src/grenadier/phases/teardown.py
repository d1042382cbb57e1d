"""teardown: every service stopped, logs kept; always runs."""

from __future__ import annotations

from grenadier.model.result import Status, StepResult
from grenadier.model.roles import ROLES, release_key
from grenadier.phases.context import RunContext
from grenadier.phases.upgrade import run_checks
from grenadier.state import RUNNER


def teardown(ctx: RunContext) -> StepResult:
    """Stop everything the run started and say what was stopped."""
    result = StepResult("teardown", Status.PASSED)
    impact = ctx.finish_impact()
    if impact:
        result.messages.append(impact)
    if all(ctx.store.get(RUNNER, release_key(role)) for role in ROLES):
        # only once both releases exist: teardown must never install anything
        run_checks(ctx.selected_checks("teardown"), ctx.check_context(), result)
    names = [svc.spec.name for svc in ctx.supervisor.running()]
    ctx.close()
    if ctx.keep_running and names:
        result.messages.append(f"left running (--keep-running): {', '.join(names)}; "
                               f"stop them with: grenadier down {ctx.run_dir}")
        return result
    result.messages.append(f"stopped: {', '.join(reversed(names)) or 'nothing was running'}")
    leftovers = [svc.spec.name for svc in ctx.supervisor.running()]
    if leftovers:
        result.status = Status.ERROR
        result.messages.append(f"still running after teardown: {', '.join(leftovers)}")
    return result
