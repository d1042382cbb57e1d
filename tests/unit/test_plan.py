from __future__ import annotations

import pytest

from grenadier.errors import UsageError
from grenadier.phases.options import STEPS
from grenadier.phases.result import Status, StepResult
from grenadier.runner.plan import plan_steps

BODY = [s for s in STEPS if s != "teardown"]


def _done(*names: str, status: Status = Status.PASSED) -> dict[str, StepResult]:
    return {n: StepResult(n, status) for n in names}


def test_fresh_run_is_every_step() -> None:
    assert plan_steps(stop_after=None, only=None, done={}) == BODY


def test_stop_after() -> None:
    assert plan_steps(stop_after="pre-upgrade", only=None, done={}) == BODY[:4]


def test_resume_starts_at_first_unfinished_step() -> None:
    done = _done("install", "setup-base", "smoke-base", "pre-upgrade")
    assert plan_steps(stop_after=None, only=None, done=done)[0] == "save-state"


def test_resume_reruns_a_failed_step() -> None:
    done = {**_done("install"), **_done("setup-base", status=Status.FAILED)}
    assert plan_steps(stop_after=None, only=None, done=done)[0] == "setup-base"


def test_only() -> None:
    assert plan_steps(stop_after=None, only="upgrade", done={}) == ["upgrade"]


def test_stop_after_a_step_already_passed() -> None:
    with pytest.raises(UsageError):
        plan_steps(stop_after="install", only=None, done=_done("install", "setup-base"))


def test_resuming_the_upgrade_rewinds_to_its_background_watch() -> None:
    done = _done(*BODY[:BODY.index("during-upgrade") + 1])
    assert plan_steps(stop_after=None, only=None, done=done)[:2] == ["during-upgrade", "upgrade"]
