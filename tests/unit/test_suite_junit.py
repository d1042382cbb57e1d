"""A phase reads each failed test's whole message back from pytest's JUnit file, though pytest
shortens the message attribute: an aggregate keeps every item."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from grenadier.phases.suite import read_junit

TESTS = '''
import pytest

def _fail_each():
    items = "\\n".join(f"- s{i} stack-{i}: StackWaitError: stack stack-{i}: wanted "
                      f"DELETE_COMPLETE, failed: DELETE_FAILED: {'reason ' * 30}\\n"
                      "    status: DELETE_FAILED\\n    last events:\\n      e1" for i in range(3))
    raise AssertionError(f"3 of 8 failed:\\n{items}")

def test_aggregate():
    _fail_each()

def test_without_traceback():
    pytest.fail("first line\\n" + "\\n".join(f"    line {i} " + "x" * 90 for i in range(9)),
                pytrace=False)

def test_short():
    assert 1 == 2, "short reason"
'''


def _junit(tmp_path: Path) -> Path:
    (tmp_path / "test_phase.py").write_text(TESTS)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-o", "junit_family=xunit2", "--junitxml", str(junit), "test_phase.py"],
                   cwd=tmp_path, capture_output=True, check=False, timeout=120)
    return junit


def test_every_item_of_an_aggregate_is_read_back(tmp_path: Path) -> None:
    outcomes = {t.name.split("::")[-1]: t for t in read_junit(_junit(tmp_path))}
    aggregate = outcomes["test_aggregate"].message.splitlines()
    assert aggregate[0] == "AssertionError: 3 of 8 failed:"
    assert [line.split(":")[0] for line in aggregate if line.startswith("- ")] == [
        "- s0 stack-0", "- s1 stack-1", "- s2 stack-2"]
    assert "    status: DELETE_FAILED" in aggregate  # the item's own indentation is kept
    untraced = outcomes["test_without_traceback"].message.splitlines()
    assert untraced[0] == "first line"
    assert untraced[-1].startswith("    line 8 ")
    assert outcomes["test_short"].message.startswith("AssertionError: short reason")
