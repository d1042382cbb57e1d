"""The steps of a run, in order, and which of them a mode has."""

from __future__ import annotations

import re

from grenadier.errors import UsageError

STEPS = (
    "install", "setup-base", "smoke-base", "pre-upgrade", "save-state", "shutdown",
    "during-upgrade", "upgrade", "start-target", "smoke-target", "post-upgrade", "teardown",
)
#: which smoke tests the test phases run: the built-in suite's, the project's own upstream
#: tests, or both
SMOKE_MODES = ("builtin", "upstream", "all")
#: the steps that run the base release only, before anything is upgraded: a failure there is
#: the base's or the machine's (exit 3), never the upgrade's
BASE_STEPS = ("install", "setup-base", "smoke-base", "pre-upgrade", "save-state", "shutdown")
#: the steps ``--mode rolling`` replaces by its one ``rolling-upgrade`` step
COLD_ONLY_STEPS = ("shutdown", "during-upgrade", "upgrade", "start-target")
ROLLING_STEP = "rolling-upgrade"
#: the labels of the rolling-upgrade step's procedure (and stop-base-engine-<i>)
ROLLING_SUBSTEPS = ("before", "db-sync", "start-target-engines", "held-target-only",
                    "held-mixed", "stop-base-engines", "switch-api", "after")


def step_names(mode: str) -> tuple[str, ...]:
    """The steps of a run in ``mode``: rolling replaces the cold steps by ``rolling-upgrade``."""
    if mode != "rolling":
        return STEPS
    names: list[str] = []
    for step in STEPS:
        name = ROLLING_STEP if step in COLD_ONLY_STEPS else step
        if name not in names:
            names.append(name)
    return tuple(names)


def is_rolling_substep(name: str) -> bool:
    """A label of the rolling-upgrade step's procedure (phases/rolling.py), not a step."""
    return name in ROLLING_SUBSTEPS or re.fullmatch(r"stop-base-engine-\d+", name) is not None


def check_step(name: str, flag: str, steps: tuple[str, ...] = STEPS) -> str:
    """``name`` when it is one of ``steps``; else a one-line UsageError saying why not."""
    if name in steps:
        return name
    hint = f"steps: {', '.join(steps)}"
    rolling = ROLLING_STEP in steps
    if rolling and name in COLD_ONLY_STEPS:
        raise UsageError(f"{flag} {name}: --mode rolling has no {name} step (rolling-upgrade "
                         f"replaces {', '.join(COLD_ONLY_STEPS)})", hint=hint)
    if rolling and is_rolling_substep(name):
        raise UsageError(f"{flag} {name}: {name} is a part of the rolling-upgrade step, which "
                         "runs whole (the workload spans it)", hint=hint)
    if name == ROLLING_STEP:
        raise UsageError(f"{flag} {name}: a step of --mode rolling only", hint=hint)
    raise UsageError(f"unknown step {name!r} for {flag}", hint=hint)
