"""Step results: status, duration, findings, messages, tests (after nox's Result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from grenadier.masking import mask_text
from grenadier.model.findings import Finding

#: the statuses of a test that failed: its assertion, or its setup or teardown
FAILED_TESTS = ("failed", "error")


def is_failed_test(status: object) -> bool:
    """A test's status (as JUnit and report.json give it) says it failed."""
    return status in FAILED_TESTS


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    @property
    def ok(self) -> bool:
        return self in (Status.PASSED, Status.SKIPPED)


@dataclass
class TestOutcome:
    """One pytest test of a phase, as read back from the phase's JUnit file."""

    __test__ = False  # not a pytest test class

    name: str
    status: str
    duration: float
    message: str = ""
    #: an upstream test (the project's own, e.g. a Heat gabbi test): its name in the
    #: comparison of base and target results; empty for other tests
    upstream: str = ""
    #: a failed test, compared with a control run: checks.api.INTRODUCED or
    #: ALSO_WITHOUT_UPGRADE
    origin: str = ""

    def __post_init__(self) -> None:
        # a test's failure may quote a URL: published in reports and JUnit, never its password
        self.message = mask_text(self.message)

    @property
    def failed(self) -> bool:
        return is_failed_test(self.status)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "status": self.status, "duration": self.duration,
                "message": self.message}
        if self.upstream:
            data["upstream"] = self.upstream
        if self.origin:
            data["origin"] = self.origin
        return data


@dataclass
class StepResult:
    name: str
    status: Status
    duration: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    tests: list[TestOutcome] = field(default_factory=list)
    started_at: float = 0.0
    #: the step only started work that goes on in the background (during-upgrade's watch);
    #: its real result replaces this one when that work ends
    background: bool = False
    #: a failed step, compared with a control run: whether its failure is the upgrade's
    origin: str = ""

    @property
    def failed_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def shown_messages(self) -> list[str]:
        """The messages as reports and the console show them: URL passwords masked."""
        return [mask_text(message) for message in self.messages]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status.value, "duration": round(self.duration, 3),
            "started_at": self.started_at,
            "findings": [f.to_dict() for f in self.findings], "messages": self.shown_messages,
            "tests": [t.to_dict() for t in self.tests], "background": self.background,
            **({"origin": self.origin} if self.origin else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        return cls(
            name=data["name"], status=Status(data["status"]), duration=data.get("duration", 0.0),
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            messages=list(data.get("messages", [])),
            tests=[TestOutcome(**t) for t in data.get("tests", [])],
            started_at=data.get("started_at", 0.0), background=bool(data.get("background")),
            origin=str(data.get("origin") or ""),
        )
