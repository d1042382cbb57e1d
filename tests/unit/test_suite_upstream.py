"""The built-in suite's smoke selection and its upstream gabbi tests (suite/gabbi.py, the
suite's conftest and test_heat_upstream.py), run by pytest with a fake tools Python."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grenadier.phases.suite import read_junit
from grenadier.plugins.heat.project import SUITE
from tests.conftest import FakeTools

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GRENADIER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tools: FakeTools) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    (path / "endpoint.json").write_text(json.dumps({
        "url": "http://127.0.0.1:1", "project": "p1", "user": "u1", "serial": False,
        "topology": "split", "release": "26.0.2", "base": "26.0.2", "target": "27.0.1"}))
    monkeypatch.setenv("GRENADIER_RUN_DIR", str(path))
    monkeypatch.setenv("GRENADIER_PHASE", "smoke-base")
    monkeypatch.setenv("GRENADIER_UPSTREAM_PYTHON", str(fake_tools.python))
    return path


def _pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # as the phases run it: an empty ini, rooted at the run directory
    root = Path(os.environ["GRENADIER_RUN_DIR"])
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return pytester.runpytest_subprocess(str(SUITE), "-c", str(root / "pytest.ini"),
                                         "--rootdir", str(root), "-p", "no:cacheprovider",
                                         "--import-mode=importlib", *args)


def _collected(pytester: pytest.Pytester, marker: str) -> list[str]:
    result = _pytest(pytester, "-m", marker, "--collect-only", "-q")
    return [line.split("::", 1)[1] for line in result.outlines if "::" in line]


@pytest.mark.usefixtures("run_dir")
@pytest.mark.parametrize(("mode", "builtin", "gabbi"), [
    (None, True, False), ("builtin", True, False), ("upstream", False, True), ("all", True, True),
])
def test_smoke_mode_selects_the_smoke_tests(pytester: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch, mode: str | None,
                                            builtin: bool, gabbi: bool) -> None:
    if mode is not None:
        monkeypatch.setenv("GRENADIER_SMOKE", mode)
    smoke = _collected(pytester, "smoke")
    assert ("test_create" in smoke) is builtin, smoke
    gabbis = [name for name in smoke if name.startswith("test_gabbi[")]
    assert gabbis == ([
        "test_gabbi[softwareconfig: create stack]",
        "test_gabbi[softwareconfig: show deployment metadata]",
        "test_gabbi[softwareconfig: create stack (2)]"] if gabbi else [])
    # post-upgrade runs the gabbits too, beside the suite's own post-upgrade tests
    post = _collected(pytester, "post_upgrade")
    assert "test_delete_old_stacks" in post
    assert any(name.startswith("test_gabbi[") for name in post) is gabbi


def test_gabbi_results_become_tests_with_their_names_and_reasons(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_dir: Path,
        fake_tools: FakeTools) -> None:
    monkeypatch.setenv("GRENADIER_SMOKE", "upstream")
    fake_tools.answer((0, "passed", ""), (1, "skipped", "known failure in ...: why"),
                      (2, "failed", "Expected status code 201, got 500"))
    junit = run_dir / "smoke-base.xml"
    result = _pytest(pytester, "-m", "smoke", "--junitxml", str(junit))
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    tests = {t.upstream: t for t in read_junit(junit)}
    assert {name: t.status for name, t in tests.items()} == {
        "softwareconfig: create stack": "passed",
        "softwareconfig: show deployment metadata": "skipped",
        "softwareconfig: create stack (2)": "failed"}
    assert tests["softwareconfig: show deployment metadata"].message == \
        "known failure in ...: why"
    failed = tests["softwareconfig: create stack (2)"]
    assert failed.name == "test_heat_upstream::test_gabbi[softwareconfig: create stack (2)]"
    assert failed.message.startswith(
        "Failed: gabbi test softwareconfig.yaml #2 (00000000-0000-0000-0000-000000000003) "
        "failed: "
        "Expected status code 201, got 500")
    plan = json.loads(fake_tools.plan.read_text(encoding="utf-8"))
    assert plan["url"] == "http://127.0.0.1:1/v1/p1"
    assert plan["headers"] == {"X-Auth-User": "u1", "X-Auth-Project": "p1"}
    # split topology: heat-wsgi-api's own noauth, which grants admin only
    assert list(plan["skips"]) == ["softwareconfig.yaml#1"]
    assert plan["prefix"].startswith("grenadier-smoke-base-")


def test_the_launcher_mode_skips_nothing_and_heat_down_skips_all(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_dir: Path,
        fake_tools: FakeTools) -> None:
    monkeypatch.setenv("GRENADIER_SMOKE", "upstream")
    endpoint = json.loads((run_dir / "endpoint.json").read_text())
    (run_dir / "endpoint.json").write_text(json.dumps({**endpoint, "topology": "all-in-one"}))
    fake_tools.answer((0, "passed", ""), (1, "passed", ""), (2, "passed", ""))
    _pytest(pytester, "-m", "smoke").assert_outcomes(passed=3)
    assert json.loads(fake_tools.plan.read_text(encoding="utf-8"))["skips"] == {}
    fake_tools.plan.unlink()
    (run_dir / "endpoint.json").write_text(json.dumps({**endpoint, "url": None}))
    result = _pytest(pytester, "-m", "smoke", "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*no Heat to test in this phase (smoke-base)*"])
    assert not fake_tools.plan.exists()


def test_on_sqlite_the_files_run_one_at_a_time(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch, run_dir: Path,
                                               fake_tools: FakeTools) -> None:
    monkeypatch.setenv("GRENADIER_SMOKE", "upstream")
    endpoint = json.loads((run_dir / "endpoint.json").read_text())
    (run_dir / "endpoint.json").write_text(json.dumps({**endpoint, "serial": True}))
    fake_tools.answer((0, "passed", ""), (1, "passed", ""), (2, "passed", ""))
    _pytest(pytester, "-m", "smoke").assert_outcomes(passed=3)
    assert json.loads(fake_tools.plan.read_text(encoding="utf-8"))["serial"] is True
