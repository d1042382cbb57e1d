"""setup-base: database up, heat.conf from the base release, db_sync, base services up.
start-target: the target on the base's configuration, and what its API says of the old stacks.
"""

from __future__ import annotations

import re
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.services.api import ServiceFailedToStart
from grenadier.services.heat_client import HeatError
from grenadier.state import RUNNER

#: what the target's start-up problems and API failures are reported as
START_CHECK, API_CHECK = "target-start", "target-api"
#: oslo.log's line prefix: ``2026-12-06 19:24:43.123 4242 ERROR heat.engine [req-...] text``
_OSLO_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \d+ (?P<level>[A-Z]+) "
                       r"\S+(?: \[[^\]]*\])? (?P<text>.*)$")
#: the last line of a traceback: ``oslo_config.cfg.RequiredOptError: value required ...``
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Failure|Failed)\b(?::.*)?$")
#: a start that failed because something else holds the port: the machine's problem
_PORT_TAKEN = ("Address already in use", "cannot bind")


def setup_base(ctx: RunContext) -> StepResult:
    """Configure and start the base release on a fresh database."""
    result = StepResult("setup-base", Status.PASSED)
    base = ctx.release("base")
    ctx.require_db()
    files = ctx.project.configure(base, ctx.deployment)
    result.messages.append(f"config: {', '.join(str(f) for f in files)}")
    outcome = ctx.project.db_sync(base, ctx.deployment)
    # nothing is upgraded yet: a base that cannot create its schema is not the upgrade's fault
    outcome.assert_success(f"the base release does not work here: its db_sync ({base.label})",
                           error=EnvironmentProblem)
    result.messages.append(f"db_sync {base.label}: {outcome.duration:.1f} s")
    ctx.start_project("base")
    svc = ctx.supervisor.running()[-1]
    result.messages.append(f"{svc.spec.name} ready after {svc.ready_after or 0:.1f} s")
    return result


def start_target(ctx: RunContext) -> StepResult:
    """Start the target release on the base release's configuration (new code, old config).

    New code must run on the old configuration (grenade's Theory of Upgrade): a target that
    does not start on it is a broken upgrade, reported with the cause its log gives. So is a
    target whose API fails on a stack the base made: each such stack is a finding, and the
    run goes on to show what else works.
    """
    result = StepResult("start-target", Status.PASSED)
    try:
        ctx.start_project("target")
    except ServiceFailedToStart as exc:
        return _not_started(ctx, exc)
    svc = ctx.supervisor.running()[-1]
    result.messages.append(f"{svc.spec.name} ready after {svc.ready_after or 0:.1f} s "
                           f"on {ctx.deployment.etc / 'heat.conf'}")
    # What the target sees before any post-upgrade test touches it, beside save-state's view.
    try:
        inventory = ctx.project.inventory(ctx.deployment)
    except EnvironmentProblem as exc:
        if not isinstance(exc.__cause__, HeatError):
            raise  # Heat out of reach, not Heat answering an error
        result.findings.append(api_finding("the target's API fails to list the old stacks",
                                           "the stack list", str(exc.__cause__)))
    else:
        ctx.store.save(RUNNER, "inventory-after", inventory)
        result.findings.extend(api_finding(f"the target's API fails on old stack {s['name']}",
                                           f"stack {s['name']} ({s['id']})", str(s["error"]))
                               for s in inventory.get("stacks", []) if s.get("error"))
    if result.failed_findings:
        result.status = Status.FAILED
        result.messages.append(f"the target's API fails on {len(result.failed_findings)} old "
                               "stack(s)")
    return result


def _not_started(ctx: RunContext, exc: ServiceFailedToStart) -> StepResult:
    logs = [exc.log, *sorted(ctx.deployment.logs.glob(f"{ctx.project.name}-target*.log"))]
    cause = cause_line(list(dict.fromkeys(logs))) or exc.one_line()
    if any(words in cause for words in _PORT_TAKEN):
        raise exc  # a port taken by another program says nothing about the target
    return StepResult("start-target", Status.FAILED, findings=[start_finding(exc, cause)],
                      messages=[exc.one_line()])


def start_finding(exc: ServiceFailedToStart, cause: str) -> Finding:
    how = "exited while starting" if exc.returncode is not None else "was not ready in time"
    return Finding(
        START_CHECK, "error", "the target does not start on the base configuration",
        where=f"{exc.service} ({how}; log {exc.log})",
        expected="the target release starts on the base release's heat.conf",
        found=cause,
        remedy="a new release must run on its predecessor's configuration: give a new option "
               "a default that works, or accept the old setting for one release with a "
               "deprecation warning")


def api_finding(what: str, where: str, error: str) -> Finding:
    """An old stack (or the stack list) the target's API answers with an error."""
    return Finding(
        API_CHECK, "error", what, where=where,
        expected="its resources are listed, as the base release listed them", found=error,
        remedy="an upgrade must keep every stack the old release made readable (e.g. keep a "
               "resource type that old stacks use, or migrate those stacks)")


def cause_line(logs: list[Path]) -> str:
    """The most telling line of what failed services wrote: the last exception a traceback
    ended with, else the last ERROR or CRITICAL line, else the first log's last line."""
    exceptions: list[str] = []
    errors: list[str] = []
    last = ""
    for index, log in enumerate(logs):
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for raw in lines:
            match = _OSLO_LOG.match(raw)
            text = (match.group("text") if match else raw).strip()
            if _EXCEPTION.match(text):
                exceptions.append(text)
            elif match and match.group("level") in ("ERROR", "CRITICAL"):
                errors.append(text)
        if index == 0:
            last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return (exceptions or errors or [last])[-1][:1000]
