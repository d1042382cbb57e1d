"""Checks as named functions whose docstring says why they exist (after pytest-alembic).

A check returns findings; a finding carries labelled context: what, where, expected, found,
and what to do about it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grenadier.errors import UsageError
from grenadier.execute import Outcome
from grenadier.model.findings import Finding
from grenadier.project.api import Deployment, Project
from grenadier.releases import Release
from grenadier.state import StateStore


@dataclass
class CheckContext:
    """What a check may look at: the run, both releases, the deployment, the state store."""

    run_dir: Path
    base: Release
    target: Release
    project: Project
    deployment: Deployment
    state: StateStore
    #: the target's db_sync, when the step ran it
    db_sync: Outcome | None = None
    #: facts checks leave for each other and for the report (e.g. revisions applied)
    facts: dict[str, object] = field(default_factory=dict)
    #: the names of the checks the step runs (empty: unknown), so that checks can share work
    selected: tuple[str, ...] = ()
    #: work checks share (e.g. one probe of the database for all of them), and its lock
    shared: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class Check:
    """A named check run by a step; its function's docstring says why it exists."""

    name: str
    #: ``pre-migration`` (old schema, Heat down), ``post-migration`` (after the target's
    #: db_sync) or ``teardown`` (after the target served the post-upgrade tests)
    step: str
    run: Callable[[CheckContext], list[Finding]]
    default: bool = True
    #: runs before the migration (Heat down, DB quiet) to record what ``run`` compares against
    capture: Callable[[CheckContext], None] | None = None
    #: work that needs neither Heat down nor the run's data (e.g. a db_sync of the target into
    #: an empty database): shutdown starts it in the background while Heat takes its seconds to
    #: stop. Best effort: ``run`` must do the work itself when it finds it not done
    prepare: Callable[[CheckContext], None] | None = None
    #: ``capture`` and ``run`` may run in threads beside the other concurrent checks of the
    #: step (they only start processes and write their own files and facts); others run alone
    concurrent: bool = False
    #: also run by ``--mode rolling``'s step, before its procedure (a ``pre-migration`` check
    #: that reads only the releases, never the database the live workload changes)
    rolling: bool = False

    @property
    def why(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""


class CheckRegistry:
    """Every known check, by name; selection rejects unknown names."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, check: Check) -> None:
        if check.name in self._checks:
            raise ValueError(f"check {check.name} registered twice")
        self._checks[check.name] = check

    def names(self) -> list[str]:
        return sorted(self._checks)

    def validate(self, names: Iterable[str]) -> None:
        unknown = sorted(set(names) - set(self._checks))
        if unknown:
            raise UsageError(
                f"unknown check(s): {', '.join(unknown)}",
                hint=f"known checks: {', '.join(self.names())}",
            )

    def select(self, only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Check]:
        self.validate([*only, *skip])
        chosen = [c for c in self._checks.values() if (c.name in only if only else c.default)]
        return [c for c in chosen if c.name not in skip]
