"""grenadier's pytest plugin, end to end through pytester (the plugin loads by its entry point)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grenadier.model.findings import Finding
from grenadier.project import testing
from grenadier.pytest_plugin import (
    Concurrently,
    Endpoint,
    UpgradeState,
    UpgradeWatch,
    discover,
    heat_client,
    namespace_for,
    wait_for_watch,
    watch_progress,
    watch_seconds,
)
from grenadier.services.connection import ENV
from grenadier.services.keystone import TokenTransport, new_credentials
from grenadier.state.store import StateStore

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GRENADIER_* variable of the outer environment leaks into these runs."""
    for name in list(os.environ):
        if name.startswith("GRENADIER_"):
            monkeypatch.delenv(name)


def run_dir(tmp: Path, url: str | None = "http://127.0.0.1:1", **extra: object) -> Path:
    path = tmp / "run"
    path.mkdir(exist_ok=True)
    endpoint = {"url": url, "project": "p1", "user": "u1", "serial": True,
                "release": "26.0.2", "base": "26.0.2", "target": "27.0.1", **extra}
    (path / "endpoint.json").write_text(json.dumps(endpoint), encoding="utf-8")
    return path


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.smoke
        @pytest.mark.pre_upgrade
        @pytest.mark.during_upgrade
        @pytest.mark.post_upgrade
        @pytest.mark.requires(base=">=1")
        def test_all(): pass
    """)
    result = pytester.runpytest("--strict-markers", "-m", "not smoke")
    result.assert_outcomes(deselected=1)
    markers = pytester.runpytest("--markers")
    for name in ("smoke", "pre_upgrade", "during_upgrade", "post_upgrade", "requires"):
        markers.stdout.fnmatch_lines([f"@pytest.mark.{name}*(grenadier)*"])


def test_upgrade_state_round_trip_across_two_runs(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = pytester.path / "state.json"
    monkeypatch.setenv(ENV.STATE, str(state))
    pytester.makepyfile(test_roundtrip="""
        import pytest

        @pytest.mark.pre_upgrade
        def test_create(upgrade_state):
            upgrade_state.save("stack", {"id": "abc", "outputs": [1, 2]})

        @pytest.mark.post_upgrade
        def test_verify(upgrade_state):
            assert upgrade_state.get("stack") == {"id": "abc", "outputs": [1, 2]}
            assert upgrade_state.require("stack")["id"] == "abc"
    """)
    pytester.runpytest("-m", "post_upgrade").assert_outcomes(failed=1)  # nothing saved yet
    pytester.runpytest("-m", "pre_upgrade").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("-m", "post_upgrade").assert_outcomes(passed=1, deselected=1)
    saved = json.loads(state.read_text(encoding="utf-8"))["namespaces"]
    assert list(saved) == ["tests/test_roundtrip.py"]


def test_require_says_what_is_missing(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV.STATE, str(pytester.path / "state.json"))
    pytester.makepyfile("def test_it(upgrade_state): upgrade_state.require('stack')")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nothing saved under tests/test_require_says_what_is_missing"
                                 ".py/stack*did this module's pre_upgrade tests run*"])


REQUIRES_TESTS = """
    import pytest

    @pytest.mark.requires(target=">=27")
    def test_target_27(): pass

    @pytest.mark.requires(base=">=27")
    def test_base_27(): pass

    @pytest.mark.requires(base="<27", target=">=27,<28")
    def test_crossing(): pass
"""


def test_requires_skips_on_versions(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV.RUN_DIR, str(run_dir(pytester.path)))
    pytester.makepyfile(REQUIRES_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*requires base>=27, base is 26.0.2*"])


def test_requires_env_overrides_and_unknown_versions(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(REQUIRES_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*the target release version is unknown*"])
    monkeypatch.setenv(ENV.BASE, "27.0.0")
    monkeypatch.setenv(ENV.TARGET, "28.0.0.0rc1")
    pytester.runpytest().assert_outcomes(passed=2, skipped=1)


def test_requires_rejects_bad_arguments(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV.BASE, "26.0.2")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires(">=27")
        def test_positional(): pass

        @pytest.mark.requires(base="twenty-seven")
        def test_bad_spec(): pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*requires() takes only keyword arguments*",
                                 "*requires(base='twenty-seven'): not a version specifier*"])


def test_inert_without_endpoint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_plain(): assert 1 + 1 == 2
        def test_heat(heat): pass
        def test_state(upgrade_state): pass
        def test_phase(phase): assert phase is None
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*no Heat to test: set GRENADIER_RUN_DIR*",
                                 "*no state store: set GRENADIER_RUN_DIR or GRENADIER_STATE*"])
    assert "grenadier:" not in result.stdout.str()  # no report header outside a run


def test_heat_down_during_upgrade_skips(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV.RUN_DIR, str(run_dir(pytester.path, url=None)))
    monkeypatch.setenv(ENV.PHASE, "during-upgrade")
    pytester.makepyfile("""
        def test_heat(heat): pass
        def test_releases(releases, phase):
            assert str(releases.base) == "26.0.2" and str(releases.target) == "27.0.1"
            assert phase == "during-upgrade"
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["grenadier: phase during-upgrade, heat down, release 26.0.2*",
                                 "*Heat is down in this phase (during-upgrade)*"])


def test_corrupt_endpoint_file_is_one_clear_error(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = run_dir(pytester.path)
    (path / "endpoint.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv(ENV.RUN_DIR, str(path))
    pytester.makepyfile("def test_heat(heat): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*grenadier: cannot read */endpoint.json*"])


def test_discover_env_overrides(tmp_path: Path) -> None:
    path = run_dir(tmp_path)
    (path / "db.json").write_text(json.dumps(
        {"kind": "sqlite", "url": "sqlite:////x/heat.db", "python": "/venv/bin/python"}))
    conn = discover({ENV.RUN_DIR: str(path), ENV.URL: "http://mine:8004/", ENV.SERIAL: "0",
                     ENV.STATE: str(tmp_path / "s.json")})
    assert conn.endpoint is not None
    assert conn.endpoint.url == "http://mine:8004"
    assert conn.endpoint.project == "p1"
    assert conn.endpoint.serial is False
    assert conn.state_path == tmp_path / "s.json"
    assert conn.db is not None
    assert conn.db.kind == "sqlite"
    assert not conn.upgrade_done()
    (path / "upgrade-done").touch()
    assert conn.upgrade_done()
    assert not discover({}).active


def test_upgrade_watch_runs_until_upgrade_done() -> None:
    polls = iter([False, False, True])
    watch = UpgradeWatch(lambda: next(polls), max_seconds=60, interval=0.01)
    ticks = list(watch)
    assert [t.upgrade_done for t in ticks] == [False, False, True]  # one pass after it ended
    assert watch.stopped_because == "the upgrade's migration ended"


def test_upgrade_watch_starts_its_last_pass_as_soon_as_the_upgrade_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Between passes the watch looks for the end of the upgrade step: the runner waits
    for the watch, so a watch that slept out its whole interval would delay the run."""
    clock = {"now": 0.0}
    monkeypatch.setattr(testing.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(testing.time, "sleep",
                        lambda seconds: clock.update(now=clock["now"] + seconds))
    ended_at = 2.35
    watch = UpgradeWatch(lambda: clock["now"] >= ended_at, max_seconds=600, interval=1.0)
    starts = [tick.elapsed for tick in watch]
    assert starts[:3] == [0.0, 1.0, 2.0]
    assert len(starts) == 4
    assert starts[3] == pytest.approx(2.4)  # not 3.0: within one poll of the end
    assert watch.stopped_because == "the upgrade's migration ended"


def test_upgrade_watch_records_each_finished_pass(tmp_path: Path) -> None:
    progress = tmp_path / "watch" / "t.json"
    watch = UpgradeWatch(iter([False, True]).__next__, max_seconds=60, interval=0.01,
                         progress=progress)
    seen = []
    for _tick in watch:
        # a pass is recorded once the test's own check of it is done, not before
        seen.append(json.loads(progress.read_text())["passes"] if progress.exists() else 0)
    assert seen == [0, 1]
    assert json.loads(progress.read_text())["passes"] == 2
    assert json.loads(progress.read_text())["upgrade_done"] is True


def test_wait_for_watch_waits_for_the_passes_another_watch_recorded(tmp_path: Path) -> None:
    path = run_dir(tmp_path, url=None)
    conn = discover({ENV.RUN_DIR: str(path)})
    progress = watch_progress(conn, "suite/test_heat_upgrade.py::test_watch")
    assert progress is not None
    progress.parent.mkdir()
    progress.write_text(json.dumps({"passes": 1}))
    assert wait_for_watch(conn, "test_heat_upgrade.py", passes=1, timeout=5)["passes"] == 1
    with pytest.raises(pytest.fail.Exception, match="finished 2 pass"):
        wait_for_watch(conn, "test_heat_upgrade.py", passes=2, timeout=0.5)
    with pytest.raises(pytest.fail.Exception, match="no watch matching 'test_other'"):
        wait_for_watch(conn, "test_other", timeout=0.5)


def test_upgrade_watch_is_bounded_and_runs_at_least_once() -> None:
    watch = UpgradeWatch(lambda: False, max_seconds=0, interval=0.01)
    assert len(list(watch)) == 1
    assert "maximum" in watch.stopped_because


def test_during_upgrade_watch_default(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = run_dir(pytester.path, url=None)
    monkeypatch.setenv(ENV.RUN_DIR, str(path))
    monkeypatch.setenv(ENV.PHASE, "during-upgrade")
    pytester.makepyfile(f"""
        from pathlib import Path

        def test_watch(upgrade_watch):
            seen = 0
            for tick in upgrade_watch:
                seen += 1
                if seen == 2:
                    Path({str(path / "upgrade-done")!r}).touch()
            assert seen == 3, seen
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_concurrently_reports_every_failure() -> None:
    def work(n: int) -> int:
        if n % 2:
            raise ValueError(f"odd {n}")
        return n * 10

    assert Concurrently(serial=False)(work, [0, 2, 4]) == [0, 20, 40]
    with pytest.raises(AssertionError) as caught:
        Concurrently(serial=True)(work, [1, 2, 3], label=lambda n: f"item{n}")
    assert "2 of 3 failed" in str(caught.value)
    assert "item1: ValueError: odd 1" in str(caught.value)
    assert "item3: ValueError: odd 3" in str(caught.value)


def test_findings_are_reported_without_failing(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = run_dir(pytester.path)
    monkeypatch.setenv(ENV.RUN_DIR, str(path))
    monkeypatch.setenv(ENV.PHASE, "post-upgrade")
    pytester.makepyfile("""
        from grenadier.model.findings import Finding

        def test_it(findings):
            findings.report(Finding(check="x.stuck", severity="warning", what="stack stuck",
                                    remedy="update it"))
    """)
    result = pytester.runpytest("--junitxml", str(path / "junit.xml"))
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*GrenadierFinding: [[]warning] x.stuck: stack stuck*",
                                 "*what to do: update it*"])
    record = json.loads((path / "findings.jsonl").read_text(encoding="utf-8"))
    assert record["phase"] == "post-upgrade"
    assert Finding.from_dict(record).check == "x.stuck"
    assert "grenadier_finding" in (path / "junit.xml").read_text(encoding="utf-8")


def test_namespace_is_the_module_file_name_wherever_it_lies() -> None:
    assert namespace_for("/a/b/test_x.py") == namespace_for(Path("test_x.py")) == \
        "tests/test_x.py"


def test_upgrade_state_all_reads_the_store_once(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("tests/test_a.py", "k1", 1)
    store.save("tests/test_a.py", "k2", {"x": 2})
    store.save("tests/test_b.py", "k1", 3)
    reads: list[int] = []
    read = StateStore._load_snapshot
    monkeypatch.setattr(StateStore, "_load_snapshot",
                        lambda self: reads.append(1) or read(self))
    fresh = StateStore(store.path)  # another process: it has read nothing yet
    assert UpgradeState(fresh, namespace_for("test_a.py")).all() == {"k1": 1, "k2": {"x": 2}}
    assert reads == [1]
    assert UpgradeState(fresh, "tests/test_none.py").all() == {}
    assert reads == [1]  # nothing changed since: nothing read again


def test_upgrade_state_require_goes_through_get(tmp_path: Path) -> None:
    class Mapped(UpgradeState):
        def get(self, key: str, default: object = None) -> object:
            return f"mapped {key}"

    assert Mapped(StateStore(tmp_path / "s.json"), "ns").require("k") == "mapped k"


def test_watch_seconds_bound(tmp_path: Path) -> None:
    path = run_dir(tmp_path)
    during = discover({ENV.RUN_DIR: str(path), ENV.PHASE: "during-upgrade"})
    assert watch_seconds(during, {}) == 600.0
    assert watch_seconds(during, {ENV.WATCH_SECONDS: "5.5"}) == 5.5
    # one pass outside a run's during-upgrade phase: nothing upgrades concurrently
    assert watch_seconds(discover({ENV.PHASE: "during-upgrade"}), {}) == 0.0
    assert watch_seconds(discover({ENV.RUN_DIR: str(path), ENV.PHASE: "post-upgrade"}), {}) == 0.0


def test_heat_client_as_the_tests_or_as_admin(tmp_path: Path) -> None:
    noauth = Endpoint("http://heat:8004", "p1", "u1", serial=False, release=None)
    with heat_client(noauth) as heat:
        assert (heat.project, heat._http.headers["X-Auth-User"]) == ("p1", "u1")
    with pytest.raises(ValueError, match="needs a run with Keystone"):
        heat_client(noauth, "admin")
    creds = new_credentials()
    (tmp_path / "creds.json").write_text(creds.to_json(), encoding="utf-8")
    auth = {"type": "keystone", "credentials": str(tmp_path / "creds.json"),
            "admin_project": "ap"}
    keystone = Endpoint("http://heat:8004", "tp", "grenadier", False, None, auth=auth)
    for account, project, who in (("tests", "tp", creds.tests), ("admin", "ap", creds.admin)):
        with heat_client(keystone, account) as heat:  # type: ignore[arg-type]
            transport = heat._http._transport
            assert isinstance(transport, TokenTransport)
            assert (heat.project, transport.account) == (project, who)
    down = Endpoint(None, "p1", "u1", serial=False, release=None)
    with pytest.raises(ValueError, match="Heat is down"):
        heat_client(down)
