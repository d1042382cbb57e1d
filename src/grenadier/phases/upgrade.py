"""upgrade: target code on the old config; config checks; target db_sync; database checks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.db import probing
from grenadier.checks.db.checks import migration_failure
from grenadier.errors import GrenadierError
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.model.roles import ROLES, release_key
from grenadier.phases.context import RunContext
from grenadier.state import RUNNER

T = TypeVar("T")


def side_by_side(checks: Sequence[Check], call: Callable[[Check], T]) -> list[T]:
    """``call`` on each check, the results in the checks' order.

    The concurrent checks run together, one thread each: they mostly wait for release
    processes (probe.py, heat-manage), which two cores run in parallel. The others run alone,
    one after another, afterwards. The first exception, in the checks' order, is raised once
    every thread has ended (leaving the pool's block waits for them).
    """
    together = [c for c in checks if c.concurrent] if len(checks) > 1 else []
    results: dict[str, T] = {}
    if together:
        with ThreadPoolExecutor(len(together), thread_name_prefix="check") as pool:
            futures = {c.name: pool.submit(call, c) for c in together}
            results = {name: future.result() for name, future in futures.items()}
    for check in checks:
        if check.name not in results:
            results[check.name] = call(check)
    return [results[c.name] for c in checks]


def _timed_run(check: Check, cctx: CheckContext) -> tuple[list[Finding], float]:
    started = time.monotonic()
    return check.run(cctx), time.monotonic() - started


def run_checks(checks: list[Check], cctx: CheckContext, result: StepResult) -> None:
    """Run ``checks``, adding their findings and a timed line each to ``result``."""
    outcomes = side_by_side(checks, lambda check: _timed_run(check, cctx))
    for check, (findings, seconds) in zip(checks, outcomes, strict=True):
        result.findings.extend(findings)
        errors = sum(1 for f in findings if f.severity == "error")
        result.messages.append(f"check {check.name}: {'FAILED' if errors else 'ok'}"
                               f" ({len(findings)} findings, {seconds:.1f} s)")


def _capture(check: Check, cctx: CheckContext) -> None:
    """What ``check`` compares against, recorded before the migration."""
    if check.capture is not None:
        check.capture(cctx)


def upgrade(ctx: RunContext) -> StepResult:
    """Migrate the base deployment's database with the target release and check the result."""
    result = StepResult("upgrade", Status.PASSED)
    ctx.require_db()
    cctx = ctx.check_context()
    try:
        # the target's probes import SQLAlchemy and Heat's models while the captures run
        probing.warm(cctx, "after")
        _migrate_and_check(ctx, cctx, result)
    finally:
        probing.close_servers(cctx)
    for rev in cctx.facts.get("revisions") or []:  # type: ignore[attr-defined]
        result.messages.append(f"applied {rev['revision']} ({rev['title']}): "
                               f"{rev.get('duration_s', 0):.3f} s")
    ctx.store.save(RUNNER, "upgrade-facts", cctx.facts)
    if result.failed_findings:
        result.status = Status.FAILED
    return result


def _migrate_and_check(ctx: RunContext, cctx: CheckContext, result: StepResult) -> None:
    run_checks(ctx.selected_checks("pre-migration"), cctx, result)
    post = ctx.selected_checks("post-migration")
    side_by_side([c for c in post if c.capture is not None], lambda c: _capture(c, cctx))
    cctx.db_sync = ctx.project.db_sync(cctx.target, ctx.deployment)
    # The database changes no more until the target starts (the checks below only read it):
    # the during-upgrade watch takes its last pass and ends while they run, not after them.
    ctx.upgrade_done_flag().touch()
    result.messages.append(f"db_sync {cctx.target.label}: exit {cctx.db_sync.returncode} "
                           f"in {cctx.db_sync.duration:.1f} s")
    if not cctx.db_sync.ok:
        # alembic's own error, the revision it stopped in, and how to restore the snapshot
        result.findings.append(migration_failure(cctx))
    else:
        run_checks(post, cctx, result)


def _prepare(checks: list[Check], cctx: CheckContext, lines: list[str]) -> None:
    for check in checks:
        assert check.prepare is not None
        started = time.monotonic()
        try:
            check.prepare(cctx)
        except GrenadierError as exc:  # the check does the work itself in the upgrade step
            lines.append(f"prepare {check.name}: not done ({exc.one_line()}); "
                         "the upgrade step does it")
        else:
            lines.append(f"prepare {check.name}: done in {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def preparing(ctx: RunContext, result: StepResult) -> Iterator[None]:
    """Run the upgrade checks' preparations in a thread while the block runs (shutdown: Heat
    takes seconds to stop, the machine is idle meanwhile); wait for them at its end. The
    probe servers of both releases start too: the upgrade step uses them (and stops them).

    Only in a run whose database is up and whose releases are installed: a preparation must
    never install or start anything. Ctrl-C waits for the thread (its commands take seconds).
    """
    checks = [c for c in ctx.selected_checks("post-migration") if c.prepare is not None]
    installed = all(ctx.store.get(RUNNER, release_key(role)) for role in ROLES)
    if not (ctx.db_started and installed):
        yield
        return
    cctx = ctx.check_context()
    # the upgrade step's probes (the base's captures, the target's checks) import meanwhile
    probing.warm(cctx, "before")
    probing.warm(cctx, "after")
    if not checks:
        yield
        return
    lines: list[str] = []
    with ThreadPoolExecutor(1, thread_name_prefix="prepare") as pool:
        future = pool.submit(_prepare, checks, cctx, lines)
        yield
    # leaving the pool's block waited for the thread, also when the block raised
    future.result()  # a bug in a preparation is raised, as one in a step would be
    result.messages.extend(lines)
