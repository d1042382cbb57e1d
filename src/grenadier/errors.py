"""Exit codes and the one error type that means "expected failure, say it in one line"."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the ``grenadier`` command (see README)."""

    #: The upgrade worked: every step passed and no check found a problem.
    OK = 0
    #: The upgrade broke something: a step failed or a check reported a finding.
    UPGRADE_FAILED = 1
    #: Bad input: an unknown release, option, step or check name; a bad path.
    USAGE = 2
    #: The environment stopped the run: a port taken, a DB unreachable, an install failed, or
    #: the base release failed before anything was upgraded.
    ENVIRONMENT = 3
    #: grenadier itself failed (a bug; its traceback is shown): the upgrade's verdict is unknown.
    BUG = 4
    #: Interrupted by the user (SIGINT / Ctrl-C) or SIGTERM.
    INTERRUPTED = 130


class GrenadierError(Exception):
    """An expected failure: printed as one line, mapped to an exit code, no traceback."""

    exit_code: ExitCode = ExitCode.ENVIRONMENT

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.replace("\n", " ").strip()
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(GrenadierError):
    """The user asked for something that cannot exist (bad name, bad path, bad flag)."""

    exit_code = ExitCode.USAGE


class EnvironmentProblem(GrenadierError):
    """Something outside grenadier stopped the run (port, disk, DB, package index)."""

    exit_code = ExitCode.ENVIRONMENT


def describe(exc: BaseException, limit: int = 1500) -> str:
    """An exception caught as a result (a failed operation, a remedy that did not work), as
    reports keep it: its class and message, bounded (Heat's errors can carry whole events)."""
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:limit]
