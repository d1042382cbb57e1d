"""The request and outcome types of a command run (after tox's ``ExecuteRequest``/``Outcome``)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grenadier.errors import EnvironmentProblem, GrenadierError


@dataclass(frozen=True)
class ExecuteRequest:
    """What to run. ``env`` is added to (not substituted for) the inherited environment."""

    cmd: Sequence[str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    log: Path | None = None
    stdin: str | None = None
    #: run as this system user (only when we are root: PostgreSQL refuses to run as root)
    user: str | None = None
    #: environment variables removed from the inherited environment
    unset_env: Sequence[str] = ()

    @property
    def shell_cmd(self) -> str:
        return shlex.join(str(part) for part in self.cmd)


@dataclass(frozen=True)
class Outcome:
    """What happened: exit code, captured output, timings."""

    request: ExecuteRequest
    returncode: int
    out: str
    err: str
    started: float
    ended: float
    timed_out: bool = False

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def last_error_line(self) -> str:
        """The most telling line of the output: the last non-empty line of stderr, else stdout."""
        for text in (self.err, self.out):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit code {self.returncode}"

    def assert_success(
        self, what: str, error: type[GrenadierError] = EnvironmentProblem, hint: str = ""
    ) -> Outcome:
        """Unless the command passed, raise ``error`` saying what failed and why, in one line."""
        if self.timed_out:
            raise error(f"{what} timed out after {self.duration:.0f} s",
                        hint=hint or self._log_hint())
        if self.returncode != 0:
            raise error(
                f"{what} failed (exit {self.returncode}): {self.last_error_line()}",
                hint=hint or self._log_hint(),
            )
        return self

    def _log_hint(self) -> str:
        return f"full output in {self.request.log}" if self.request.log else ""
