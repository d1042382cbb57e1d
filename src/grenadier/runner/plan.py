"""Which steps a run executes: all, up to ``--stop-after``, ``--only`` one, or resume."""

from __future__ import annotations

from grenadier.errors import UsageError
from grenadier.phases.options import STEPS
from grenadier.phases.result import StepResult

#: the upgrade step is only watched when its background watch starts just before it
WATCHED = ("during-upgrade", "upgrade")


def plan_steps(*, stop_after: str | None, only: str | None, done: dict[str, StepResult],
               steps: tuple[str, ...] = STEPS) -> list[str]:
    """The steps to run in order, teardown excluded (the runner always runs it last)."""
    body = [s for s in steps if s != "teardown"]
    if only:
        return [] if only == "teardown" else [only]
    start = 0
    for index, step in enumerate(body):
        result = done.get(step)
        if result is None or not result.status.ok:
            start = index
            break
    else:
        start = len(body)
    if body[start:start + 1] == [WATCHED[1]] and WATCHED[0] in body:
        start -= 1  # resuming the upgrade: the resources must be watched while it runs
    end = body.index(stop_after) + 1 if stop_after and stop_after != "teardown" else len(body)
    if stop_after and end <= start:
        raise UsageError(f"--stop-after {stop_after}: that step has already passed in this run",
                         hint="omit --stop-after or give a later step")
    return body[start:end]
