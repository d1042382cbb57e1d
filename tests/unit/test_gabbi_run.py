"""One run of the gabbi runner in the tools venv (upstream/run.py), with a fake tools Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grenadier.plugins.heat.upstream import cases
from grenadier.plugins.heat.upstream.run import CaseResult, GabbiRun, Plan
from grenadier.plugins.heat.upstream.tools import gabbits_dir
from tests.conftest import FakeTools

PLAN = Plan(url="http://127.0.0.1:1/v1/p1", headers={"X-Auth-Project": "p1"},
            skips={"softwareconfig: show deployment metadata": "known failure: why"},
            prefix="grenadier-smoke-base-abc")


def _run(tools: FakeTools, tmp_path: Path) -> GabbiRun:
    found = cases.load_cases(gabbits_dir(tools.python))
    return GabbiRun(tools.python, found, PLAN, "secret-token", tmp_path / "upstream",
                    name="gabbi-smoke-base")


def test_results_map_back_to_the_cases_and_the_plan_holds_no_token(
        fake_tools: FakeTools, tmp_path: Path) -> None:
    fake_tools.answer((0, "passed", ""), (1, "skipped", "known failure: why"),
                      (2, "failed", "Expected 201, got 500"))
    run = _run(fake_tools, tmp_path)
    assert run.results() == {
        "softwareconfig: create stack": CaseResult("passed", 0.5, ""),
        "softwareconfig: show deployment metadata": CaseResult("skipped", 0.5,
                                                               "known failure: why"),
        "softwareconfig: create stack (2)": CaseResult("failed", 0.5, "Expected 201, got 500")}
    plan = json.loads(fake_tools.plan.read_text(encoding="utf-8"))
    assert plan == {"url": "http://127.0.0.1:1/v1/p1", "headers": {"X-Auth-Project": "p1"},
                    "prefix": "grenadier-smoke-base-abc", "serial": False,
                    "skips": {"softwareconfig.yaml#1": "known failure: why"}}
    assert "secret-token" not in fake_tools.plan.read_text(encoding="utf-8")


def test_a_runner_that_dies_leaves_every_test_an_error_naming_its_log(
        fake_tools: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GABBI_FAKE_RESULTS", "")
    monkeypatch.setenv("GABBI_FAKE_EXIT", "3")
    run = _run(fake_tools, tmp_path)
    results = run.results()
    assert {r.status for r in results.values()} == {"error"}
    message = results["softwareconfig: create stack"].message
    assert message == ("the gabbi runner exited with code 3 without a result for this test; "
                       f"see {tmp_path / 'upstream' / 'gabbi-smoke-base.log'}")


def test_a_runner_past_its_time_is_stopped(fake_tools: FakeTools, tmp_path: Path) -> None:
    fake_tools.python.write_text("#!/bin/sh\nexec sleep 60\n", encoding="utf-8")
    run = _run(fake_tools, tmp_path)
    results = run.results(timeout=0.5)
    assert "did not finish in 0 s" in results["softwareconfig: create stack"].message
    assert run._proc is not None
    assert run._proc.poll() is not None
