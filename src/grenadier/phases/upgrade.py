"""upgrade: target code on the old config; config checks; target db_sync; database checks."""

from __future__ import annotations

import time

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.db.checks import migration_failure
from grenadier.phases.context import RunContext
from grenadier.phases.result import Status, StepResult
from grenadier.state import RUNNER


def run_checks(checks: list[Check], cctx: CheckContext, result: StepResult) -> None:
    """Run ``checks``, adding their findings and a timed line each to ``result``."""
    for check in checks:
        started = time.monotonic()
        findings = check.run(cctx)
        result.findings.extend(findings)
        errors = sum(1 for f in findings if f.severity == "error")
        result.messages.append(f"check {check.name}: {'FAILED' if errors else 'ok'}"
                               f" ({len(findings)} findings, {time.monotonic() - started:.1f} s)")


def upgrade(ctx: RunContext) -> StepResult:
    """Migrate the base deployment's database with the target release and check the result."""
    result = StepResult("upgrade", Status.PASSED)
    ctx.require_db()
    cctx = ctx.check_context()
    run_checks(ctx.selected_checks("pre-migration"), cctx, result)
    post = ctx.selected_checks("post-migration")
    for check in post:
        if check.capture is not None:
            check.capture(cctx)
    cctx.db_sync = ctx.project.db_sync(cctx.target, ctx.deployment)
    result.messages.append(f"db_sync {cctx.target.label}: exit {cctx.db_sync.returncode} "
                           f"in {cctx.db_sync.duration:.1f} s")
    if not cctx.db_sync.ok:
        # alembic's own error, the revision it stopped in, and how to restore the snapshot
        result.findings.append(migration_failure(cctx))
    else:
        run_checks(post, cctx, result)
    for rev in cctx.facts.get("revisions") or []:  # type: ignore[attr-defined]
        result.messages.append(f"applied {rev['revision']} ({rev['title']}): "
                               f"{rev.get('duration_s', 0):.3f} s")
    ctx.store.save(RUNNER, "upgrade-facts", cctx.facts)
    if result.failed_findings:
        result.status = Status.FAILED
    return result
