"""The core issue's end-to-end facts: a real upgrade, its run directory, its reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grenadier.model.steps import STEPS
from tests.e2e.conftest import Run, heat_processes


def test_default_run_passes_every_step(default_run: Run) -> None:
    assert default_run.returncode == 0, default_run.err[-3000:]
    assert default_run.status() == dict.fromkeys(STEPS, "passed")
    assert "upgrade OK" in default_run.err


def test_run_directory_explains_itself(default_run: Run) -> None:
    run_dir = default_run.run_dir
    for name in ("run.json", "state.json", "report.json", "junit.xml", "etc/heat.conf",
                 "releases/base-freeze.txt", "releases/target-freeze.txt",
                 "logs/heat-base.log", "logs/heat-target.log", "logs/postgresql.log"):
        assert (run_dir / name).is_file(), name
    assert "openstack-heat==26.0.2" in (run_dir / "releases/base-freeze.txt").read_text()
    assert "openstack-heat==27.0.1" in (run_dir / "releases/target-freeze.txt").read_text()
    assert list((run_dir / "snapshot").glob("heat.*"))
    assert (run_dir / "etc" / "heat.conf").stat().st_mode & 0o077 == 0


def test_junit_has_a_case_per_step_and_per_test(default_run: Run) -> None:
    root = ET.parse(default_run.run_dir / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == set(STEPS)
    pre = [c.get("name") for c in suites["pre-upgrade"].iter("testcase")]
    assert pre[0] == "pre-upgrade"
    assert len(pre) > 1, "the pre-upgrade step lists its tests"


def test_upgrade_kept_the_base_config_and_ran_the_target(default_run: Run) -> None:
    steps = default_run.steps()
    messages = " ".join(str(m) for m in steps["upgrade"]["messages"])  # type: ignore[union-attr]
    assert "db_sync 27.0.1: exit 0" in messages
    started = " ".join(str(m) for m in steps["start-target"]["messages"])  # type: ignore[union-attr]
    assert "etc/heat.conf" in started
    timeline = default_run.report["timeline"]
    events = [(e["service"], e["event"]) for e in timeline]  # type: ignore[union-attr, index]
    assert events.index(("heat-base", "stop")) < events.index(("heat-target", "start"))


def test_nothing_left_running(default_run: Run) -> None:
    assert heat_processes(default_run.run_dir) == []


def test_the_console_of_a_passing_run_shows_only_findings(default_run: Run) -> None:
    """Nothing on the console or in the report reads as a failure: a during-upgrade file
    whose tests all skip ends by itself, it did not die."""
    assert "died during this step" not in default_run.err
    messages = [m for step in default_run.steps().values()
                for m in step["messages"]]  # type: ignore[union-attr]
    assert not [m for m in messages if "died during this step" in m]
    table_end = default_run.err.index("└")
    after = default_run.err[table_end:].splitlines()[1:]
    assert all(line.startswith(("[warning] ", "[info] ", "run directory: ")) for line in after), \
        after


def test_silent_removals_between_releases_say_what_the_release_notes_announced(
        default_run: Run) -> None:
    silent = [f for f in default_run.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
              if f["kind"] == "removed-without-notice"]
    assert silent
    assert all(f["severity"] == "warning" for f in silent)
    vitrage = [f for f in silent if f["where"].startswith("[clients_vitrage] ")]
    assert vitrage
    assert all("announced in the release notes: remove-vitrage-2e4f1e4a9e3479b6.yaml"
               in f["found"] for f in vitrage), vitrage
