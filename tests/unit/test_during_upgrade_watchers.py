"""The during-upgrade phase: one pytest process per test file, all running while the upgrade runs.

Real pytest child processes under a real Supervisor; only the run around them is a stand-in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grenadier.model.result import Status
from grenadier.phases.suite import (
    finish_watch,
    prestart_watch,
    read_junit,
    start_watch,
    watch_files,
)
from grenadier.services import Supervisor

#: a during-upgrade test that records when it started, then waits for the upgrade to end
WAITER = '''
import json, time
from pathlib import Path

import pytest


@pytest.mark.during_upgrade
def test_waits_for_the_upgrade(grenadier_connection, upgrade_watch):
    run_dir = grenadier_connection.run_dir
    (run_dir / "started-{name}").write_text(json.dumps(time.time()))
    for tick in upgrade_watch:
        pass
    assert tick.upgrade_done
    assert {ok}, "{name} says no"
'''


@dataclass
class Options:
    tests: list[str]
    builtin_suite: bool = False
    fail_on_stuck: bool = False


@dataclass
class Ctx:
    """What start_watch / finish_watch use of a RunContext."""

    run_dir: Path
    options: Options
    supervisor: Supervisor
    watchers: dict[str, str] = field(default_factory=dict)
    watch_offset: int = 0

    def upgrade_done_flag(self) -> Path:
        return self.run_dir / "upgrade-done"


def _write(folder: Path, name: str, ok: bool = True) -> None:
    (folder / f"test_{name}.py").write_text(WAITER.format(name=name, ok=ok), encoding="utf-8")


def _started(run_dir: Path, names: list[str], timeout: float = 60.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {n: json.loads((run_dir / f"started-{n}").read_text())
                 for n in names if (run_dir / f"started-{n}").is_file()}
        if len(found) == len(names):
            return found
        time.sleep(0.1)
    pytest.fail(f"not all watchers started: {sorted(found)} of {names}")


def test_files_without_the_marker_get_no_process(tmp_path: Path) -> None:
    _write(tmp_path, "one")
    (tmp_path / "test_other.py").write_text("def test_x():\n    pass\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "conftest.py").write_text("MARK = 'during_upgrade'\n")
    (sub / "test_marked_by_conftest.py").write_text("def test_y():\n    pass\n")
    single = tmp_path / "test_single.py"
    # a folder's files in name order, each with the folder; a path not there adds nothing
    assert list(watch_files([str(tmp_path), str(single)]).items()) == [
        (sub / "test_marked_by_conftest.py", tmp_path), (tmp_path / "test_one.py", tmp_path)]
    # the run's path order, each file once
    assert list(watch_files([str(tmp_path / "test_one.py"), str(tmp_path)]).items()) == [
        (tmp_path / "test_one.py", tmp_path), (sub / "test_marked_by_conftest.py", tmp_path)]


def _two_watched_files(tmp_path: Path) -> tuple[Path, Path]:
    """A tests folder with two during-upgrade files, and a run directory."""
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("first", "second"):
        _write(tests, name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return tests, run_dir


def test_during_upgrade_files_run_side_by_side_until_the_upgrade_ends(tmp_path: Path) -> None:
    tests, run_dir = _two_watched_files(tmp_path)
    with Supervisor() as supervisor:
        ctx = Ctx(run_dir, Options([str(tests)]), supervisor)
        started = start_watch(ctx)  # type: ignore[arg-type]
        assert started.background
        assert len(ctx.watchers) == 2
        # both wait for the upgrade to end: they only both start if they run side by side
        seen = _started(run_dir, ["first", "second"])
        ended = time.time()
        result = finish_watch(ctx)  # type: ignore[arg-type]
    assert result is not None
    assert result.status is Status.PASSED, result
    assert all(at < ended for at in seen.values())
    # named as in the other phases: relative to the folder given
    assert sorted(t.name for t in result.tests) == [
        "test_first::test_waits_for_the_upgrade", "test_second::test_waits_for_the_upgrade"]
    assert ctx.watchers == {}
    # one junit/during-upgrade.xml, like every other phase, holding both files' tests
    merged = read_junit(run_dir / "junit" / "during-upgrade.xml")
    assert sorted(t.name for t in merged) == sorted(t.name for t in result.tests)
    # each watch recorded its passes under its file's name (the files are outside the run dir)
    progress = {p.name: json.loads(p.read_text()) for p in (run_dir / "watch").iterdir()}
    assert sorted(progress) == [f"test_{n}.py_test_waits_for_the_upgrade.json"
                                for n in ("first", "second")]
    assert all(p["upgrade_done"] and p["passes"] >= 1 for p in progress.values())


def test_one_failing_file_fails_the_phase_and_keeps_the_others_results(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    _write(tests, "good")
    _write(tests, "bad", ok=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with Supervisor() as supervisor:
        ctx = Ctx(run_dir, Options([str(tests)]), supervisor)
        start_watch(ctx)  # type: ignore[arg-type]
        _started(run_dir, ["good", "bad"])
        result = finish_watch(ctx)  # type: ignore[arg-type]
    assert result is not None
    assert result.status is Status.FAILED
    statuses = sorted((t.name.split("::")[0].rsplit(".", 1)[-1], t.status) for t in result.tests)
    assert [s for _, s in statuses] == ["failed", "passed"], statuses
    assert any("bad says no" in t.message for t in result.tests)


def test_a_watch_that_ends_before_the_upgrade_still_reports_its_failure(
        tmp_path: Path) -> None:
    """Started directly (not held: a resume, or a held watch that had died), a watch whose
    test fails at once has ended before the upgrade does: its failure still counts."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_quick.py").write_text(
        "import pytest\n\n\n@pytest.mark.during_upgrade\n"
        "def test_quick():\n    assert False, 'quick says no'\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with Supervisor() as supervisor:
        ctx = Ctx(run_dir, Options([str(tests)]), supervisor)
        start_watch(ctx)  # type: ignore[arg-type]
        (name,) = ctx.watchers
        deadline = time.monotonic() + 60
        while supervisor.get(name).alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not supervisor.get(name).alive()
        result = finish_watch(ctx)  # type: ignore[arg-type]
    assert result is not None
    assert result.status is Status.FAILED
    assert any("quick says no" in t.message for t in result.tests), result.tests


@pytest.mark.parametrize("dies", [False, True])
def test_watches_started_ahead_run_nothing_until_their_step(tmp_path: Path, dies: bool) -> None:
    """Started during shutdown (held), a watch's pytest has imported, and run nothing, when
    during-upgrade lets it go; one that ended meanwhile is started again as usual."""
    tests, run_dir = _two_watched_files(tmp_path)
    with Supervisor() as supervisor:
        ctx = Ctx(run_dir, Options([str(tests)]), supervisor)
        prestart_watch(ctx)  # type: ignore[arg-type]
        held = dict(ctx.watchers)
        assert len(held) == 2
        assert all(supervisor.get(name).alive() for name in held)
        assert not list(run_dir.glob("started-*"))  # held: no test has started
        if dies:
            supervisor.stop(next(iter(held)))
        started = start_watch(ctx)  # type: ignore[arg-type]
        assert started.messages == ["checks of 2 test file(s) running in the background "
                                    "while the upgrade step runs"]
        _started(run_dir, ["first", "second"])
        result = finish_watch(ctx)  # type: ignore[arg-type]
    assert result is not None
    assert result.status is Status.PASSED, result
    assert len(result.tests) == 2


def test_watches_started_ahead_whose_step_never_comes_are_stopped_at_once(
        tmp_path: Path) -> None:
    """A run that ends before during-upgrade (a failed shutdown, Ctrl-C) must not wait for
    watches that were never let go: they are stopped, and there is no phase result."""
    tests = tmp_path / "tests"
    tests.mkdir()
    _write(tests, "first")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with Supervisor() as supervisor:
        ctx = Ctx(run_dir, Options([str(tests)]), supervisor)
        prestart_watch(ctx)  # type: ignore[arg-type]
        (name,) = ctx.watchers
        process = supervisor.get(name).proc
        assert finish_watch(ctx) is None  # type: ignore[arg-type]
        assert ctx.watchers == {}
        assert process.poll() is not None  # stopped, not waited for
    assert not list(run_dir.glob("started-*"))
