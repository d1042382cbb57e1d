"""Shared fixtures: the grenadier CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def args_of(*parts: Sequence[str]) -> list[str]:
    return [p for part in parts for p in part]
