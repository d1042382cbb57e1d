from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run

PY = sys.executable


def test_outcome_captures_output_and_logs(tmp_path: Path) -> None:
    log = tmp_path / "cmd.log"
    code = "import sys; print('out'); print('err', file=sys.stderr)"
    outcome = run(ExecuteRequest([PY, "-c", code], log=log))
    assert outcome.ok
    assert outcome.out == "out\n"
    assert outcome.err == "err\n"
    text = log.read_text()
    assert "out" in text
    assert "err" in text
    assert "# exit 0" in text


def test_stdin_and_env(tmp_path: Path) -> None:
    code = "import os,sys; print(sys.stdin.read().upper(), os.environ['X_TEST'])"
    outcome = run(ExecuteRequest([PY, "-c", code], stdin="abc", env={"X_TEST": "1"}))
    assert outcome.out.strip() == "ABC 1"


def test_failure_is_one_line_with_last_stderr_line() -> None:
    code = "import sys; print('noise', file=sys.stderr); sys.exit('the real reason')"
    outcome = run(ExecuteRequest([PY, "-c", code]))
    with pytest.raises(EnvironmentProblem, match="doing it failed \\(exit 1\\): the real reason"):
        outcome.assert_success("doing it")


def test_timeout_kills_the_child_and_its_children() -> None:
    code = ("import subprocess,sys,time; "
            "subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
            "time.sleep(60)")
    started = time.monotonic()
    outcome = run(ExecuteRequest([PY, "-c", code], timeout=1))
    assert outcome.timed_out
    assert time.monotonic() - started < 15
    with pytest.raises(EnvironmentProblem, match="timed out"):
        outcome.assert_success("sleeping")


def test_missing_binary() -> None:
    with pytest.raises(EnvironmentProblem, match="not found"):
        run(ExecuteRequest(["/nonexistent/binary"]))
