"""Shared fixtures: the grenadier CLI as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Release venvs are reused across tests: let their Pythons write bytecode (grenadier's CLI does
# the same), or every heat-manage and probe call recompiles Heat and SQLAlchemy.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@dataclass
class CliResult:
    returncode: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("grenadier: error:")]


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Run ``python -m grenadier ARGS`` in a child process, as a user would."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run([sys.executable, "-m", "grenadier", *args], cwd=cwd or tmp_path,
                              capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def one_error_line(result: CliResult) -> str:
    """The single ``grenadier: error:`` line a bad input must produce (and no traceback)."""
    assert "Traceback" not in result.err, result.err
    lines = result.error_lines
    assert len(lines) == 1, result.err
    return lines[0]


def run_dirs(workdir: Path) -> list[Path]:
    """The run directories a command left under ``workdir``."""
    return sorted((workdir / "runs").glob("*")) if (workdir / "runs").exists() else []


def args_of(*parts: Sequence[str]) -> list[str]:
    return [p for part in parts for p in part]


GABBI_FILE = """
fixtures:
    - AuthenticationFixture
tests:
- name: create stack
  desc: 00000000-0000-0000-0000-000000000001
  POST: /stacks
  status: 201
- name: show deployment metadata
  desc: d26d1ae4-4924-11e8-842f-0ed5f89f718b
  GET: /software_deployments/metadata/x
- name: create stack
  desc: 00000000-0000-0000-0000-000000000003
  POST: /stacks
"""
#: what the fake tools Python does when run as ``python gabbi_runner.py PLAN RESULTS``: keep
#: the plan it was given, answer with the results it was told to, exit as it was told to
FAKE_PYTHON = """#!/bin/sh
cp "$2" "$GABBI_FAKE_PLAN"
[ -n "$GABBI_FAKE_RESULTS" ] && cp "$GABBI_FAKE_RESULTS" "$3"
exit "${GABBI_FAKE_EXIT:-0}"
"""


@dataclass
class FakeTools:
    """A tools venv whose Python fakes the gabbi runner, with one gabbi file of three tests
    (``softwareconfig.yaml``: two share a name; the second is a known failure)."""

    python: Path
    plan: Path
    results: Path

    def answer(self, *records: tuple[int, str, str]) -> None:
        """Results the runner reports: (index, status, message) of softwareconfig.yaml."""
        self.results.write_text(json.dumps([
            {"file": "softwareconfig.yaml", "index": i, "status": s, "duration": 0.5,
             "message": m} for i, s, m in records]), encoding="utf-8")


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    venv = tmp_path / "tools-venv"
    gabbits = venv / "lib" / "python3.11" / "site-packages" / "heat_tempest_plugin" / "tests" \
        / "api" / "gabbits"
    gabbits.mkdir(parents=True)
    (gabbits / "softwareconfig.yaml").write_text(GABBI_FILE, encoding="utf-8")
    python = venv / "bin" / "python"
    python.parent.mkdir()
    python.write_text(FAKE_PYTHON, encoding="utf-8")
    python.chmod(0o755)
    tools = FakeTools(python, tmp_path / "plan-seen.json", tmp_path / "results-given.json")
    monkeypatch.setenv("GABBI_FAKE_PLAN", str(tools.plan))
    monkeypatch.setenv("GABBI_FAKE_RESULTS", str(tools.results))
    return tools


#: the e2e session runs that tests of several modules read (tests/e2e/conftest.py)
SHARED_RUNS = ("postgres_kept", "mariadb_rabbit_kept", "rolling_run", "keystone_run")


def _modules_reading_shared_runs() -> frozenset[str]:
    name = re.compile(rf"(?<!\w)({'|'.join(SHARED_RUNS)})(?!\w)")
    return frozenset(f"tests/e2e/{path.name}"
                     for path in (Path(__file__).parent / "e2e").glob("test_*.py")
                     if name.search(path.read_text(encoding="utf-8")))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist, one worker runs a module's tests (its module-scoped runs happen
    once), and one worker every module that reads a shared run (each of those runs once)."""
    if config.getvalue("dist") != "load":
        return None  # a --dist the user chose
    from xdist.scheduler import LoadScopeScheduling

    shared = _modules_reading_shared_runs()

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "shared-runs" if module in shared else module

    return ByModule(config, log)
