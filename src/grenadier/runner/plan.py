"""Which steps a run executes: all, up to ``--stop-after``, ``--only`` one, or resume."""

from __future__ import annotations

from grenadier.errors import UsageError
from grenadier.model.result import StepResult
from grenadier.model.steps import ROLLING_STEP, STEPS

#: the upgrade step is only watched when its background watch starts just before it
WATCHED = ("during-upgrade", "upgrade")


def plan_steps(*, stop_after: str | None, only: str | None, done: dict[str, StepResult],
               steps: tuple[str, ...] = STEPS, db_synced: bool = False) -> list[str]:
    """The steps to run in order, teardown excluded (the runner always runs it last).

    ``db_synced``: an attempt at the rolling-upgrade step of this run already ran the target's
    db_sync (phases/rolling.py records it), so that step cannot run again."""
    if only == ROLLING_STEP:
        _check_only_rolling(done)
    if only:
        planned = [] if only == "teardown" else [only]
    else:
        planned = _from_first_unfinished(stop_after, done, steps)
    if db_synced and ROLLING_STEP in planned:
        # the step starts the base release first: on a schema the target migrated, the base
        # would serve (and write) a database newer than its code
        flag = f"--only {ROLLING_STEP}" if only else "--resume"
        raise UsageError(f"{flag}: an earlier rolling-upgrade attempt of this run already "
                         "migrated the database to the target (db-sync); running it again "
                         "would start the base release on that database",
                         hint="start a new run")
    return planned


def _from_first_unfinished(stop_after: str | None, done: dict[str, StepResult],
                           steps: tuple[str, ...]) -> list[str]:
    body = [s for s in steps if s != "teardown"]
    start = next((index for index, step in enumerate(body)
                  if step not in done or not done[step].status.ok), len(body))
    if body[start:start + 1] == [WATCHED[1]] and WATCHED[0] in body:
        start -= 1  # resuming the upgrade: the resources must be watched while it runs
    end = body.index(stop_after) + 1 if stop_after and stop_after != "teardown" else len(body)
    if stop_after and end <= start:
        raise UsageError(f"--stop-after {stop_after}: that step has already passed in this run",
                         hint="omit --stop-after or give a later step")
    return body[start:end]


def _check_only_rolling(done: dict[str, StepResult]) -> None:
    """``--only rolling-upgrade`` upgrades a base release this run set up and did not upgrade
    yet: it starts the base's API and engines on the run's configuration and database."""
    setup = done.get("setup-base")
    if setup is None or not setup.status.ok:
        raise UsageError("--only rolling-upgrade needs a run whose setup-base passed (the base "
                         "release configured and serving)",
                         hint="run --stop-after save-state, then --resume RUN_DIR --only "
                              "rolling-upgrade")
    upgraded = done.get(ROLLING_STEP)
    if upgraded is not None and upgraded.status.ok:
        raise UsageError("--only rolling-upgrade: the rolling upgrade already passed in this "
                         "run; running it again would start the base release on the database "
                         "the target has been serving", hint="start a new run")
