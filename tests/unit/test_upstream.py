"""Upstream tests judged base against target (phases/upstream.py), and read back from JUnit."""

from __future__ import annotations

from pathlib import Path

from grenadier.model.result import Status, StepResult, TestOutcome
from grenadier.phases import upstream
from grenadier.phases.suite import read_junit

MARK = "test_heat_upstream::test_gabbi"


def _test(name: str, status: str, message: str = "") -> TestOutcome:
    return TestOutcome(f"{MARK}[{name}]", status, 0.1, message, upstream=name)


def _base(*tests: TestOutcome) -> dict[str, TestOutcome]:
    return upstream.upstream_tests(list(tests))


def _phase(name: str, *tests: TestOutcome, returncode: int = 1) -> StepResult:
    status = Status.FAILED if any(t.failed for t in tests) else Status.PASSED
    result = StepResult(name, status, tests=list(tests))
    upstream.judge(result, returncode if status is Status.FAILED else 0,
                   _base(_test("stacks: create stack", "passed"),
                         _test("resources: mark resource unhealthy", "passed"),
                         _test("templates: template validate", "failed", "500 on the base")))
    return result


def test_regression_fires_when_a_test_passed_on_the_base_and_fails_on_the_target() -> None:
    result = _phase("smoke-target", _test("stacks: create stack", "passed"),
                    _test("resources: mark resource unhealthy", "failed",
                          "Expected status code 200, got 400\nbody"))
    assert result.status is Status.FAILED
    (finding,) = result.failed_findings
    assert finding.check == "upstream-regression"
    assert finding.kind == "regression"
    assert "resources: mark resource unhealthy passed on the base release and fails on the " \
           "target" in finding.what
    assert finding.where == f"smoke-target: {MARK}[resources: mark resource unhealthy]"
    assert finding.found == "Expected status code 200, got 400"


def test_quiet_on_a_clean_pair() -> None:
    result = _phase("post-upgrade", _test("stacks: create stack", "passed"),
                    _test("resources: mark resource unhealthy", "passed"),
                    _test("templates: template validate", "skipped", "known failure"))
    assert result.status is Status.PASSED
    assert result.findings == []
    assert result.messages == []


def test_a_test_failing_on_the_base_too_is_a_warning_and_does_not_fail_the_step() -> None:
    result = _phase("smoke-target", _test("templates: template validate", "failed", "500"))
    assert result.status is Status.PASSED
    (finding,) = result.findings
    assert (finding.severity, finding.kind) == ("warning", "also-on-base")
    assert "not counted against the upgrade" in result.messages[-1]


def test_another_failure_in_the_step_keeps_it_failed() -> None:
    builtin = TestOutcome("test_heat_smoke::test_update", "failed", 1.0, "boom")
    result = _phase("smoke-target", _test("templates: template validate", "failed", "500"),
                    builtin)
    assert result.status is Status.FAILED


def test_pytest_ending_otherwise_than_failed_tests_keeps_the_step_failed() -> None:
    # exit 2: interrupted, or errors in collection: not the tests' verdict
    result = _phase("smoke-target", _test("templates: template validate", "failed", "500"),
                    returncode=2)
    assert result.status is Status.FAILED


def test_no_base_result_cannot_excuse_a_failure() -> None:
    result = StepResult("smoke-target", Status.FAILED,
                        tests=[_test("stacks: create stack", "error", "ConnectError")])
    upstream.judge(result, 1, None)
    assert result.status is Status.FAILED
    assert [f.kind for f in result.failed_findings] == ["no-base-result"]
    assert "on the base: not run" in result.failed_findings[0].what


def test_failures_on_the_base_are_warnings_and_the_run_goes_on() -> None:
    result = StepResult("smoke-base", Status.FAILED,
                        tests=[_test("stacks: create stack", "passed"),
                               _test("templates: template validate", "failed", "500")])
    upstream.judge(result, 1, None)
    assert result.status is Status.PASSED
    assert [(f.severity, f.kind) for f in result.findings] == [("warning", "base-failure")]


def test_other_phases_and_tests_are_left_alone() -> None:
    plain = StepResult("post-upgrade", Status.FAILED,
                       tests=[TestOutcome("test_heat_upgrade::test_x", "failed", 1.0, "no")])
    upstream.judge(plain, 1, None)
    assert plain.status is Status.FAILED
    assert plain.findings == []


def test_base_tests_come_from_the_recorded_step_results() -> None:
    recorded = {"smoke-base": StepResult("smoke-base", Status.PASSED, tests=[
        _test("stacks: create stack", "passed"),
        TestOutcome("test_heat_smoke::test_create", "passed", 1.0)]).to_dict()}
    assert set(upstream.base_tests(recorded) or {}) == {"stacks: create stack"}
    assert upstream.base_tests({}) is None
    assert upstream.base_tests(None) is None


def test_read_junit_keeps_the_upstream_property(tmp_path: Path) -> None:
    path = tmp_path / "smoke-base.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="test_heat_upstream" name="test_gabbi[stacks: show stack]" '
        'time="0.1"><properties><property name="grenadier_upstream" value="stacks: show stack"'
        ' /></properties><skipped message="known failure: why" /></testcase>'
        '<testcase classname="test_heat_smoke" name="test_show" time="0.2" />'
        "</testsuite></testsuites>", encoding="utf-8")
    gabbi, builtin = read_junit(path)
    assert (gabbi.upstream, gabbi.status, gabbi.message) == (
        "stacks: show stack", "skipped", "known failure: why")
    assert builtin.upstream == ""
    assert "upstream" not in builtin.to_dict()
    assert TestOutcome(**gabbi.to_dict()) == gabbi
