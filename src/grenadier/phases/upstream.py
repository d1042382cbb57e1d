"""The project's upstream tests (Heat's gabbits) judged base against target, test by test.

They are the project's own tests, not grenadier's: one can fail on the base release already
(a test newer than the release, a deployment detail). So a failure is the upgrade's only when
the same test passed on the base. smoke-base records the base's results; smoke-target and
post-upgrade each compare theirs with them:

* passed on the base, fails on the target: an upgrade regression (error, the step fails);
* fails on the base too: not the upgrade's doing (warning, the step does not fail for it);
* fails on the target with no base result to compare (the base did not run it): error;
* failed on the base (smoke-base): a warning, the run goes on to see the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult, TestOutcome

CHECK = "upstream-regression"
BASE_PHASE = "smoke-base"
TARGET_PHASES = ("smoke-target", "post-upgrade")
#: pytest's exit code when tests failed (and nothing else went wrong)
TESTS_FAILED = 1


def upstream_tests(tests: Sequence[TestOutcome]) -> dict[str, TestOutcome]:
    """The upstream tests of a phase by their comparison name."""
    return {test.upstream: test for test in tests if test.upstream}


def base_tests(results: Any) -> dict[str, TestOutcome] | None:
    """The base's upstream results from the runner's recorded step results (None: none ran)."""
    step = results.get(BASE_PHASE) if isinstance(results, dict) else None
    if not isinstance(step, dict):
        return None
    found = upstream_tests([TestOutcome(**t) for t in step.get("tests", [])
                            if isinstance(t, dict)])
    return found or None


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no message"


def compare(base: Mapping[str, TestOutcome] | None, target: Mapping[str, TestOutcome],
            phase: str) -> list[Finding]:
    """One finding per upstream test that fails in ``phase``, judged by its base result."""
    findings = []
    for name, test in target.items():
        if not test.failed:
            continue
        before = base.get(name) if base is not None else None
        where = f"{phase}: {test.name}"
        if before is not None and before.failed:
            findings.append(Finding(
                CHECK, "warning", f"upstream test {name} fails on the base release too", where,
                "the test passes on the target, as it should on the base", _first(test.message),
                "not introduced by the upgrade: see why it fails on the base (smoke-base)",
                kind="also-on-base"))
            continue
        was = before.status if before is not None else "not run"
        findings.append(Finding(
            CHECK, "error",
            f"upstream test {name} " + ("passed on the base release and fails on the target"
                                        if was == "passed" else
                                        f"fails on the target (on the base: {was})"),
            where, "the target passes Heat's own test as the base did", _first(test.message),
            "an upgrade regression in the API path this test drives: read the test in "
            "heat-tempest-plugin's gabbits and the target's Heat log",
            kind="regression" if was == "passed" else "no-base-result"))
    return findings


def base_findings(tests: Mapping[str, TestOutcome]) -> list[Finding]:
    """smoke-base: each upstream test that fails on the base, as a warning."""
    return [Finding(CHECK, "warning", f"upstream test {name} fails on the base release",
                    f"{BASE_PHASE}: {test.name}", "the test passes", _first(test.message),
                    "the upgrade is not under test yet: a failure here only matters if the "
                    "target passes where the base did not; add the test to the known "
                    "failures of its mode if its cause lies outside Heat",
                    kind="base-failure")
            for name, test in tests.items() if test.failed]


def judge(result: StepResult, returncode: int, base: Mapping[str, TestOutcome] | None) -> None:
    """Add the upstream findings of ``result``'s phase; a phase failed only by upstream tests
    that are not the upgrade's doing passes (with their warnings)."""
    mine = upstream_tests(result.tests)
    if not mine:
        return
    if result.name == BASE_PHASE:
        result.findings.extend(base_findings(mine))
    elif result.name in TARGET_PHASES:
        result.findings.extend(compare(base, mine, result.name))
    else:
        return
    excused = {f.where.split(": ", 1)[1] for f in result.findings
               if f.check == CHECK and f.severity == "warning"}
    others = [t for t in result.tests if t.failed and t.name not in excused]
    if result.status is Status.FAILED and returncode == TESTS_FAILED and not others \
            and not result.failed_findings:
        result.status = Status.PASSED
        result.messages.append(f"{len(excused)} upstream test(s) fail on the base release "
                               "as well: reported, not counted against the upgrade")
