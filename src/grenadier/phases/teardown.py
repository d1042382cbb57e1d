"""teardown: every service stopped, logs kept; always runs."""

from __future__ import annotations

from grenadier.checks.api import Finding
from grenadier.checks.config.oldconf import collect_deprecation_warnings, deprecation_findings
from grenadier.phases.context import RunContext
from grenadier.phases.result import Status, StepResult


def teardown(ctx: RunContext) -> StepResult:
    """Stop everything the run started and say what was stopped."""
    result = StepResult("teardown", Status.PASSED)
    impact = ctx.finish_impact()
    if impact:
        result.messages.append(impact)
    result.findings.extend(_deprecations(ctx))
    names = [svc.spec.name for svc in ctx.supervisor.running()]
    if ctx.keep_running and names:
        ctx.close(keep_running=True)
        result.messages.append(f"left running (--keep-running): {', '.join(names)}; "
                               f"stop them with: grenadier down {ctx.run_dir}")
        return result
    ctx.close()
    result.messages.append(f"stopped: {', '.join(reversed(names)) or 'nothing was running'}")
    leftovers = [svc.spec.name for svc in ctx.supervisor.running()]
    if leftovers:
        result.status = Status.ERROR
        result.messages.append(f"still running after teardown: {', '.join(leftovers)}")
    return result


def _deprecations(ctx: RunContext) -> list[Finding]:
    """Deprecation warnings the target logged on the old config (grenade's deprecations log)."""
    logs = sorted(ctx.deployment.logs.glob("heat-target*.log"))
    counts = collect_deprecation_warnings(logs)
    if counts:
        ctx.store.save("runner", "deprecations", counts)
    return deprecation_findings(counts)
