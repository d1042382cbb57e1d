"""``grenadier check db``: rehearse the database upgrade on a private copy of a Heat database.

An operator's question before an upgrade is "will *my* database migrate?". The steps answer it
without touching their database:

- ``copy``: the source read (``pg_dump``, ``mariadb-dump --single-transaction``, a read-only
  SQLite connection, or the dump file given) and loaded into a private instance of the same
  kind inside the run directory;
- ``install``: the target release, from the release cache;
- ``upgrade``: the copy's alembic revision read, the selected database checks' captures taken
  on the copy, the target's ``heat-manage db_sync`` run on it, then the checks.

Only the target release is installed. The checks take a "base" release for two things: a
python with SQLAlchemy and alembic to run ``probe.py`` (every release venv has both, so the
target's serves), and, in ``migration``, the revision the database was at, which it asks the
base for only when none was captured. Here that revision is always captured, from the copy
itself before db_sync, and the target's migration scripts contain every earlier revision; so
the target stands in for the base and no check needs the base's Heat code. A copy at a revision
the target does not know (newer than the target, or not Heat's database) is refused in one line.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grenadier.checks.api import Check, CheckContext, CheckRegistry
from grenadier.checks.db.checks import DB_CHECKS, migration_failure
from grenadier.checks.db.compare import Json, applied_revisions
from grenadier.checks.db.probing import probe
from grenadier.errors import ExitCode, GrenadierError, UsageError
from grenadier.host import free_port, write_atomic
from grenadier.masking import mask_url
from grenadier.model.result import Status, StepResult
from grenadier.options.run import PROJECT
from grenadier.phases.upgrade import run_checks
from grenadier.plugins.manager import get_project, plugin_manager
from grenadier.project.api import Deployment
from grenadier.releases import Release, ReleaseCache, parse_spec
from grenadier.releases.constraints import check_choice, described
from grenadier.report.publish import publish
from grenadier.runner.runner import VERDICTS as RUN_VERDICTS
from grenadier.runner.runner import Reporter as StepReporter
from grenadier.services import Supervisor
from grenadier.services.dbcopy import PRIVATE, Source, fetch, load, prepare_private
from grenadier.services.dbcopy import private_database as make_private
from grenadier.state import StateStore

#: seconds to dump the source and to load the copy (a 1,000-stack database takes seconds)
DUMP_TIMEOUT = LOAD_TIMEOUT = 1800.0
VERDICTS = {**RUN_VERDICTS, ExitCode.OK: "the copy upgraded cleanly",
            ExitCode.UPGRADE_FAILED: "the upgrade of the copy BROKE something"}


class Reporter(StepReporter, Protocol):
    def say(self, message: str) -> None: ...


@dataclass(frozen=True)
class RehearsalOptions:
    target: str
    source: Source
    workdir: Path
    cache_dir: Path | None = None
    checks: tuple[str, ...] = ()
    skip_checks: tuple[str, ...] = ()
    #: how the target's venv gets its libraries (``--constraints``)
    constraints: str = "auto"

    def shown(self) -> dict[str, object]:
        """The options as reports show them: a password in the URL masked."""
        return {"target": self.target, "constraints": mask_url(self.constraints),
                "db_url": mask_url(self.source.url) if self.source.url else None,
                "db_dump": str(self.source.dump) if self.source.dump else None,
                "checks": list(self.checks), "skip_checks": list(self.skip_checks)}


def prepare(options: RehearsalOptions) -> tuple[str, list[Check]]:
    """Everything that needs no server and no release, checked before a run directory
    exists: the spec, the source's kind, the check names. Bad input is one line."""
    parse_spec(options.target)
    check_choice(options.constraints)
    if options.cache_dir is not None and options.cache_dir.exists() \
            and not options.cache_dir.is_dir():
        raise UsageError(f"--cache-dir {options.cache_dir} is not a directory")
    registry = CheckRegistry()
    for check in DB_CHECKS:
        registry.add(check)
    return options.source.kind, registry.select(options.checks, options.skip_checks)


def source_revision(data: Json, target: str) -> tuple[dict[str, object], str]:
    """What probe.py's ``current,heads`` (target's scripts, copy's version) says about the
    copy: facts for the report, and a line for people. A copy the target cannot migrate
    (no Heat schema, or a revision the target does not know) is bad input."""
    versions: list[str] = data["current"]["versions"]
    revisions = data["heads"]["revisions"]
    titles = {r["revision"]: r["title"] for r in revisions}
    if not versions and not data["current"]["legacy"]:
        raise UsageError("the source database has no alembic version: it holds no Heat schema",
                         hint="give the URL or dump of Heat's own database")
    unknown = [v for v in versions if v not in titles]
    if unknown:
        raise UsageError(f"the source database is at revision {', '.join(unknown)}, which "
                         f"{target} does not know",
                         hint="a database newer than the target, or not Heat's")
    pending = applied_revisions(revisions, versions, data["heads"]["heads"])
    facts: dict[str, object] = {"versions": versions, "legacy": data["current"]["legacy"],
                                "pending": [r["revision"] for r in pending]}
    at = ", ".join(f"{v} ({titles[v]!r})" for v in versions) or "legacy sqlalchemy-migrate"
    return facts, f"the copy is at {at}; {target} applies {len(pending)} revision(s)"


class Rehearsal:
    """One ``check db``: its steps, private instance, check context and results."""

    def __init__(self, options: RehearsalOptions, run_dir: Path, reporter: Reporter) -> None:
        self.options = options
        self.run_dir = run_dir
        self.reporter = reporter
        self.kind, self.checks = prepare(options)
        self.supervisor = Supervisor(pid_file=run_dir / "services.json")
        self.db = make_private(self.kind, run_dir)
        self.results: list[StepResult] = []
        #: the expected failure that ended the rehearsal, printed as one line by the CLI
        self.error: GrenadierError | None = None
        self.target: Release | None = None
        self.cctx: CheckContext | None = None

    # the steps ------------------------------------------------------------------------------
    def run(self) -> ExitCode:
        """Run the steps; the private instance is stopped and the reports written always."""
        code = ExitCode.BUG
        try:
            steps: list[tuple[str, Callable[[StepResult], None]]] = [
                # the source first: a typo in --db-url fails in a second, not after an install
                ("copy", self._copy), ("install", self._install), ("upgrade", self._upgrade)]
            for name, step in steps:
                if not self._step(name, step).status.ok:
                    break
            code = self.exit_code()
        except KeyboardInterrupt:
            code = ExitCode.INTERRUPTED
            raise
        finally:
            try:
                self.supervisor.stop_all()
            finally:
                self._write_reports(code)
        return code

    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return self.error.exit_code
        failed = any(not r.status.ok or r.failed_findings for r in self.results)
        return ExitCode.UPGRADE_FAILED if failed else ExitCode.OK

    def _step(self, name: str, step: Callable[[StepResult], None]) -> StepResult:
        self.reporter.step_started(name)
        started = time.monotonic()
        result = StepResult(name, Status.PASSED, started_at=time.time())
        try:
            step(result)
            if result.failed_findings:
                result.status = Status.FAILED
        except GrenadierError as exc:
            result.status = Status.ERROR
            result.messages.append(exc.one_line())
            self.error = exc
        except KeyboardInterrupt:
            result.status = Status.INTERRUPTED
            raise
        except Exception:  # a bug: recorded, then shown with its traceback by the CLI
            result.status = Status.ERROR
            raise
        finally:
            result.duration = time.monotonic() - started
            self.results.append(result)
            self.reporter.step_finished(result)
        return result

    def _install(self, result: StepResult) -> None:
        cache = ReleaseCache(self.options.cache_dir, constraints=self.options.constraints)
        target = cache.ensure(parse_spec(self.options.target),
                              log=self.run_dir / "logs" / "install-target.log")
        self.target = target
        write_atomic(self.run_dir / "releases" / "target-freeze.txt", cache.freeze(target))
        environment = described(target.environment)
        result.messages.append(f"target {target.label} in {target.venv}, built with "
                               f"{environment}")
        self.reporter.say(f"target {target.label}: {environment}")

    def _copy(self, result: StepResult) -> None:
        source = self.options.source
        how = {"sqlite": "a read-only SQLite connection", "postgresql": "pg_dump",
               "mariadb": "mariadb-dump --single-transaction"}[PRIVATE[self.kind]]
        self.reporter.say("reading the source database "
                          + (f"with {how}" if source.url else f"from {source.dump}"))
        started = time.monotonic()
        dump = fetch(source, self.run_dir, self.supervisor, DUMP_TIMEOUT)
        if source.url and PRIVATE[self.kind] != "sqlite":
            result.messages.append(f"source dumped with {how} in {time.monotonic() - started:.1f}"
                                   f" s ({dump.stat().st_size / 1e6:.1f} MB): only read")
        prepare_private(self.db, self.kind, dump)
        self.reporter.say(f"loading the copy into a private {PRIVATE[self.kind]} in "
                          f"{self.run_dir / 'db'}")
        started = time.monotonic()
        self.db.start(self.supervisor)
        load(self.db, self.kind, dump, LOAD_TIMEOUT)
        result.messages.append(f"copy loaded into a private {PRIVATE[self.kind]} in "
                               f"{time.monotonic() - started:.1f} s")

    def _upgrade(self, result: StepResult) -> None:
        cctx = self._context()
        self._detect(cctx, result)
        for check in self.checks:
            if check.capture is not None:
                self.reporter.say(f"capturing the copy for {check.name}")
                started = time.monotonic()
                check.capture(cctx)
                result.messages.append(f"capture for {check.name}: "
                                       f"{time.monotonic() - started:.1f} s")
        assert self.target is not None
        self.reporter.say(f"db_sync of the copy with {self.target.label}")
        cctx.db_sync = cctx.project.db_sync(self.target, cctx.deployment)
        result.messages.append(f"db_sync {self.target.label}: exit {cctx.db_sync.returncode} "
                               f"in {cctx.db_sync.duration:.1f} s")
        if not cctx.db_sync.ok:
            result.findings.append(dataclasses.replace(
                migration_failure(cctx), remedy="fix the migration; the source database was "
                f"only read: the failed migration ran on the copy in {self.run_dir / 'db'}"))
            return
        for check in self.checks:
            self.reporter.say(f"check {check.name}")
            run_checks([check], cctx, result)
        for rev in cctx.facts.get("revisions") or []:  # type: ignore[attr-defined]
            line = f"applied {rev['revision']} ({rev['title']}): {rev['duration_s'] or 0:.3f} s"
            result.messages.append(line)
            self.reporter.say(line)

    # helpers ----------------------------------------------------------------------------------
    def _context(self) -> CheckContext:
        """A check context on the copy, with a heat.conf rendered from the target."""
        assert self.target is not None
        project = get_project(plugin_manager(), PROJECT)
        deployment = Deployment(self.run_dir, self.db, free_port())
        project.configure(self.target, deployment)
        self.cctx = CheckContext(
            run_dir=self.run_dir, base=self.target, target=self.target, project=project,
            deployment=deployment, state=StateStore(self.run_dir / "state.json"),
            selected=tuple(c.name for c in self.checks))
        return self.cctx

    def _detect(self, cctx: CheckContext, result: StepResult) -> None:
        """Which revision the copy is at, and what the target will apply to it."""
        data = probe(cctx, cctx.target, "current,heads", self.db.url(), timeout=120)
        cctx.facts["source"], line = source_revision(data, cctx.target.label)
        result.messages.append(line)
        self.reporter.say(line)

    def _write_reports(self, code: ExitCode) -> None:
        source = (self.cctx.facts.get("source") if self.cctx is not None else None) or {}
        at = ", ".join(source.get("versions") or []) or "?"  # type: ignore[attr-defined]
        # "base" and options "db": what report.html's title and header line show
        header = {"grenadier": "check db", "base": f"copy at {at}",
                  "target": self.options.target, "copy": PRIVATE.get(self.kind),
                  "options": {**self.options.shown(), "db": PRIVATE.get(self.kind)},
                  "verdict": VERDICTS[code], "exit_code": int(code),
                  "releases": {"target": self.target.to_dict() if self.target else None}}
        facts = self.cctx.facts if self.cctx is not None else {}
        publish(self.run_dir, header, self.results,
                {"facts": facts, "timeline": self.supervisor.timeline()}, say=self.reporter.say,
                title=f"grenadier check db -> {self.options.target}")
