"""End-to-end: Heat's own API tests (heat-tempest-plugin's gabbits) in the smoke phases and in
post-upgrade, against real Heat releases, and a crafted target whose regression only they see.

The split-noauth case (the rolling run) needs the Debian package rabbitmq-server (skipped
without it); the Keystone case installs Keystone from PyPI into the release cache.
"""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import BASE, TARGET, Run, grenadier, heat_processes
from tests.helpers import crafted

GABBITS = 47
PHASES = ("smoke-base", "smoke-target", "post-upgrade")
METADATA = "softwareconfig: show deployment metadata"
REGRESSION = "resources: mark resource unhealthy"

needs_rabbit = pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
    and not Path("/usr/sbin/rabbitmq-server").is_file(),
    reason="needs rabbitmq-server (apt-get install rabbitmq-server)")


def upstream(run: Run, step: str) -> dict[str, dict[str, object]]:
    tests = run.steps()[step]["tests"]
    return {str(t["upstream"]): t for t in tests if t.get("upstream")}  # type: ignore[union-attr]


def counts(run: Run, step: str) -> Counter[str]:
    return Counter(str(t["status"]) for t in upstream(run, step).values())


def test_gabbits_pass_in_every_phase_and_reach_every_report(workdir: Path,
                                                            cache_dir: Path) -> None:
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--smoke", "all",
                    workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 0, run.err[-3000:]
    for step in PHASES:
        # the all-in-one launcher grants the roles Keystone gives an admin: nothing is skipped
        assert counts(run, step) == Counter(passed=GABBITS), (step, counts(run, step))
    assert "test_create" in str(run.steps()["smoke-target"]["tests"])  # the built-in ones too
    cases = [c for c in ET.parse(run.run_dir / "junit.xml").getroot().iter("testcase")
             if c.get("classname") == "grenadier.smoke-target"
             and "test_gabbi[" in str(c.get("name"))]
    assert len(cases) == GABBITS
    page = (run.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Heat's upstream tests, base against target" in page
    assert f"smoke-base: {GABBITS} of {GABBITS} passed" in page
    # heat-tempest-plugin and gabbi live in a tools venv of the cache, not in grenadier's
    installed = [m for m in run.steps()["install"]["messages"]  # type: ignore[union-attr]
                 if m.startswith("test tools: GRENADIER_UPSTREAM_PYTHON=")]
    (python,) = (Path(m.split("=", 1)[1]) for m in installed)
    assert python.parent.parent.parent == cache_dir / "tools"
    assert python.parent.parent.name.startswith(
        f"heat-tempest-plugin-3.0.0-py{sys.version_info.major}.{sys.version_info.minor}-")
    assert importlib.util.find_spec("gabbi") is None
    assert heat_processes(run.run_dir) == []


@pytest.fixture
def regression_tree(tree: Path) -> Path:
    crafted.patch_mark_unhealthy_reason(tree)
    return tree


def test_a_regression_only_the_gabbits_drive_fails_smoke_target_naming_the_test(
        regression_tree: Path, workdir: Path, cache_dir: Path) -> None:
    run = grenadier("run", "--base", BASE, "--target", str(regression_tree), "--smoke", "all",
                    "--stop-after", "smoke-target", workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    assert run.status()["smoke-base"] == "passed"
    assert run.status()["smoke-target"] == "failed"
    target = upstream(run, "smoke-target")
    failed = sorted(name for name, t in target.items() if t["status"] == "failed")
    # the PATCH answers 400; the next test, which reads the mark back, fails with it
    assert failed == [REGRESSION, "resources: show unhealthy resource"]
    assert "Invalid keys in resource mark unhealthy" in str(target[REGRESSION]["message"])
    builtin = [t for t in run.steps()["smoke-target"]["tests"]  # type: ignore[union-attr]
               if not t.get("upstream")]
    assert {t["status"] for t in builtin} == {"passed"}, builtin
    findings = run.steps()["smoke-target"]["findings"]
    regressions = [f for f in findings if f["kind"] == "regression"]  # type: ignore[union-attr]
    assert f"upstream test {REGRESSION} passed on the base release and fails on the target" \
        in [f["what"] for f in regressions]
    assert f"upstream-regression: upstream test {REGRESSION} passed on the base release" \
        in run.err
    assert f"test_gabbi[{REGRESSION}]" in run.err
    assert heat_processes(run.run_dir) == []


@needs_rabbit
def test_plain_noauth_skips_the_known_failure_with_its_reason(rolling_run: Run) -> None:
    run = rolling_run
    assert run.returncode == 0, run.err[-3000:]
    for step in PHASES:
        assert counts(run, step) == Counter(passed=GABBITS - 1, skipped=1), step
        skipped = upstream(run, step)[METADATA]
        assert skipped["status"] == "skipped"
        assert "requires the reader role" in str(skipped["message"])


@needs_rabbit
def test_with_keystone_every_gabbit_passes(keystone_run: Run) -> None:
    assert keystone_run.returncode == 0, keystone_run.err[-3000:]
    for step in PHASES:
        assert counts(keystone_run, step) == Counter(passed=GABBITS), \
            (step, counts(keystone_run, step))
