from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from grenadier.errors import UsageError
from grenadier.model.result import Status, StepResult
from grenadier.model.steps import ROLLING_STEP, STEPS, check_step, step_names
from grenadier.options.run import RunOptions
from grenadier.phases import rolling
from grenadier.runner.plan import plan_steps
from grenadier.state import RUNNER, StateStore
from tests.conftest import CliRunner, one_error_line

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


# -- --stop-after / --only in --mode rolling ----------------------------------------------------

ROLLING = step_names("rolling")


def test_rolling_stop_after_and_only_name_the_rolling_step() -> None:
    assert plan_steps(stop_after="rolling-upgrade", only=None, done={}, steps=ROLLING) == \
        ["install", "setup-base", "smoke-base", "pre-upgrade", "save-state", "rolling-upgrade"]
    done = _done(*ROLLING[:5])
    assert plan_steps(stop_after=None, only="rolling-upgrade", done=done, steps=ROLLING) == \
        ["rolling-upgrade"]
    # a rolling upgrade that failed is run again, whole
    done[ROLLING_STEP] = StepResult(ROLLING_STEP, Status.FAILED)
    assert plan_steps(stop_after=None, only="rolling-upgrade", done=done, steps=ROLLING) == \
        ["rolling-upgrade"]


def test_only_rolling_upgrade_needs_the_base_set_up() -> None:
    with pytest.raises(UsageError, match="needs a run whose setup-base passed") as info:
        plan_steps(stop_after=None, only="rolling-upgrade", done={}, steps=ROLLING)
    assert "--resume RUN_DIR --only rolling-upgrade" in str(info.value.hint)
    failed = {**_done("install"), **_done("setup-base", status=Status.FAILED)}
    with pytest.raises(UsageError, match="needs a run whose setup-base passed"):
        plan_steps(stop_after=None, only="rolling-upgrade", done=failed, steps=ROLLING)


def test_only_rolling_upgrade_refuses_a_run_already_upgraded() -> None:
    done = _done(*ROLLING[:6])
    with pytest.raises(UsageError, match="already passed in this run"):
        plan_steps(stop_after=None, only="rolling-upgrade", done=done, steps=ROLLING)
    # the steps after it still run alone
    assert plan_steps(stop_after=None, only="post-upgrade", done=done, steps=ROLLING) == \
        ["post-upgrade"]


@pytest.mark.parametrize(("name", "message"), [
    ("shutdown", "--stop-after shutdown: --mode rolling has no shutdown step (rolling-upgrade "
                 "replaces shutdown, during-upgrade, upgrade, start-target)"),
    ("upgrade", "--mode rolling has no upgrade step"),
    ("db-sync", "--stop-after db-sync: db-sync is a part of the rolling-upgrade step, which "
                "runs whole"),
    ("stop-base-engine-2", "stop-base-engine-2 is a part of the rolling-upgrade step"),
    ("switch-api", "switch-api is a part of the rolling-upgrade step"),
    ("pre_upgrade", "unknown step 'pre_upgrade' for --stop-after"),
])
def test_rolling_refuses_cold_steps_and_sub_steps_with_one_line(name: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        check_step(name, "--stop-after", ROLLING)
    assert message in info.value.message
    assert "\n" not in info.value.message
    assert "rolling-upgrade" in str(info.value.hint)
    assert check_step("rolling-upgrade", "--only", ROLLING) == "rolling-upgrade"


def test_cold_mode_refuses_the_rolling_step_and_knows_its_own() -> None:
    with pytest.raises(UsageError, match="--only rolling-upgrade: a step of --mode rolling only"):
        check_step("rolling-upgrade", "--only", STEPS)
    with pytest.raises(UsageError, match="unknown step 'db-sync' for --only"):
        check_step("db-sync", "--only", STEPS)  # a rolling sub-step means nothing in cold mode
    assert [check_step(s, "--only", STEPS) for s in STEPS] == list(STEPS)


ROLLING_ARGS = ("run", "--mode", "rolling", "--bus", "rabbit")


def test_cli_rolling_stop_after_a_cold_step_is_one_line(cli: CliRunner, tmp_path: Path) -> None:
    result = cli(*ROLLING_ARGS, "--stop-after", "start-target", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--mode rolling has no start-target step" in one_error_line(result)
    assert not (tmp_path / "w" / "runs").exists()


def test_cli_only_rolling_upgrade_on_a_new_run_is_one_line(cli: CliRunner,
                                                           tmp_path: Path) -> None:
    result = cli(*ROLLING_ARGS, "--only", "rolling-upgrade", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "--only rolling-upgrade needs a run whose setup-base passed" in one_error_line(result)
    assert ">> " not in result.out + result.err  # no step was started


def test_a_rolling_upgrade_run_again_names_its_workload_stacks_anew(tmp_path: Path) -> None:
    # a failed attempt leaves its workload stacks: the next attempt (--resume, --only) must not
    # create stacks of the same names (Heat answers 409, a failed operation)
    ctx = SimpleNamespace(store=StateStore(tmp_path / "state.json"))
    assert rolling.workload_prefix(ctx) == "wl"  # type: ignore[arg-type]
    for attempt, prefix in ((1, "wl"), (2, "wl2"), (3, "wl3")):
        ctx.store.save(RUNNER, rolling.ATTEMPTS, attempt)
        assert rolling.workload_prefix(ctx) == prefix  # type: ignore[arg-type]


# -- a rolling upgrade that got past db-sync cannot run again in that run -----------------------

def _rolling_failed_after(*passed: str) -> dict[str, StepResult]:
    return {**_done(*passed), ROLLING_STEP: StepResult(ROLLING_STEP, Status.FAILED)}


@pytest.mark.parametrize(("only", "flag"), [(None, "--resume"),
                                            ("rolling-upgrade", "--only rolling-upgrade")])
def test_a_rolling_upgrade_past_db_sync_is_not_run_again(only: str | None, flag: str) -> None:
    done = _rolling_failed_after(*ROLLING[:5])
    with pytest.raises(UsageError) as info:
        plan_steps(stop_after=None, only=only, done=done, steps=ROLLING, db_synced=True)
    assert info.value.message.startswith(f"{flag}: an earlier rolling-upgrade attempt of this "
                                         "run already migrated the database to the target")
    assert "would start the base release on that database" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.hint == "start a new run"
    # the steps after it may still run alone (they start the target), and before db-sync the
    # step is run again, whole
    assert plan_steps(stop_after=None, only="post-upgrade", done=done, steps=ROLLING,
                      db_synced=True) == ["post-upgrade"]
    assert plan_steps(stop_after=None, only=only, done=done, steps=ROLLING)[0] == ROLLING_STEP


def test_a_passed_rolling_upgrade_is_not_refused_on_resume() -> None:
    done = _done(*ROLLING[:6])
    assert plan_steps(stop_after=None, only=None, done=done, steps=ROLLING, db_synced=True) == \
        ["smoke-target", "post-upgrade"]


class _Supervisor:
    def note(self, service: str, event: str, detail: str = "") -> None:
        return None


def test_the_rolling_step_records_db_sync_before_it_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    seen: list[object] = []

    def db_sync(release: object, deployment: object) -> SimpleNamespace:
        seen.append(store.get(RUNNER, rolling.DB_SYNCED))
        return SimpleNamespace(ok=False, returncode=1, duration=0.1)  # even a failed one

    release = SimpleNamespace(label="27.0.1")
    ctx = SimpleNamespace(store=store, release=lambda role: release, deployment=None,
                          project=SimpleNamespace(db_sync=db_sync), supervisor=_Supervisor(),
                          say=lambda line: None)
    workload = SimpleNamespace(set_step=lambda label: None, fill_step=lambda timeout: True)
    timeline = rolling._Timeline(ctx, workload, StepResult(ROLLING_STEP, Status.PASSED))  # type: ignore[arg-type]
    assert store.get(RUNNER, rolling.DB_SYNCED) is None
    assert rolling._upgrade(ctx, None, timeline, None) is False  # type: ignore[arg-type]
    assert seen == [True]  # a db_sync cut short may have migrated part of the schema
    assert store.get(RUNNER, rolling.DB_SYNCED) is True


def test_cli_resume_of_a_rolling_run_past_db_sync_is_one_line(cli: CliRunner,
                                                             tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    RunOptions(mode="rolling", bus="rabbit").save(run_dir)
    store = StateStore(run_dir / "state.json")
    store.save(RUNNER, "results", {name: result.to_dict() for name, result in
                                   _rolling_failed_after(*ROLLING[:5]).items()})
    store.save(RUNNER, rolling.DB_SYNCED, True)
    result = cli("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert "--resume: an earlier rolling-upgrade attempt of this run already migrated" \
        in one_error_line(result)
    assert ">> " not in result.out + result.err  # no step was started
