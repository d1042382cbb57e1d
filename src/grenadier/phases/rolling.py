"""rolling-upgrade: Heat upgraded piece by piece under a live workload (``--mode rolling``).

Follows Heat's "Rolling Upgrades" procedure (doc/source/operating_guides/upgrades_guide.rst)
on one machine, with the run's one RabbitMQ vhost shared by both releases (see
docs/rolling-upgrade.md for which steps are followed and why):

  before        base API + base engines serve the workload
  db-sync       the target's ``heat-manage db_sync`` while the base release runs (guide step 2)
  start-target-engines  target engines started beside the base engines (guide step 5)
  stop-base-engine-<i>  base engines stopped one at a time, gracefully (guide steps 5, 7);
                (a test hook SIGKILLs one instead: phases/rolling_kill.py)
  switch-api    base API stopped, target API started on the same port (guide step 6)
  after         target API + target engines serve the workload

Each step is an event of the run's timeline and a message of the step; every workload
operation carries the step it started in.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grenadier.checks.api import Finding
from grenadier.errors import EnvironmentProblem
from grenadier.host import write_atomic
from grenadier.phases.context import RunContext
from grenadier.phases.result import Status, StepResult
from grenadier.phases.rolling_kill import (
    KILL_ENV,
    REQ,
    Kill,
    blame,
    engine_to_kill,
    in_flight_at,
    wait_until_busy,
)
from grenadier.plugins.heat.client import HeatClient
from grenadier.report.impact import rpc_versions
from grenadier.services.api import ServiceSpec
from grenadier.services.keystone import TokenTransport
from grenadier.state import RUNNER
from grenadier.workload.generator import OpRecord, Workload, WorkloadLimits, parse_mix
from grenadier.workload.report import WorkloadReport, build_report

STEP = "rolling-upgrade"
WORKLOAD_FILE = "workload.json"
#: the workload's stacks are named <prefix>-<seq>
WORKLOAD_PREFIX = "wl"
#: the state store key (RUNNER namespace) counting the attempts at this step in a run
ATTEMPTS = "rolling-attempts"
#: the state store key (RUNNER namespace) set once an attempt at this step ran the target's
#: db_sync: the step cannot run again in that run (runner/plan.py refuses it)
DB_SYNCED = "rolling-db-synced"
ROLES = ("base", "target")
#: seconds the workload runs on the base release before, and on the target after, the upgrade
SETTLE_SECONDS = 10.0
#: an operation slower than this is listed (a stall, not a failure)
SLOW_SECONDS = 10.0


def client_factory(ctx: RunContext) -> Any:
    endpoint = ctx.project.endpoint(ctx.deployment)
    url, project, user = str(endpoint["url"]), str(endpoint["project"]), str(endpoint["user"])
    keystone = ctx.deployment.keystone

    def make() -> HeatClient:
        # retries: connection refused while the API is switched counts as the load balancer's
        # queueing (about 64 s of back-off); a request that reached Heat is never retried
        # blindly (see HeatClient.request)
        transport = None
        if keystone is not None:
            transport = TokenTransport(keystone.creds.v3, keystone.creds.tests)
        return HeatClient(url, project, user, retries=8, backoff=0.25, transport=transport)

    return make


def rpc_api_versions(ctx: RunContext) -> dict[str, str]:
    """The engine RPC API version each release's heat-engine speaks (from its source)."""
    return {role: rpc_versions(ctx.release(role))["engine"] or "unknown" for role in ROLES}


def _log_file(spec: ServiceSpec) -> Path:
    """Where the service logs: its ``--log-file`` (Heat's processes), else its output."""
    cmd = [str(part) for part in spec.cmd]
    if "--log-file" in cmd[:-1]:
        return Path(cmd[cmd.index("--log-file") + 1])
    return spec.log


@dataclass(frozen=True)
class _Role:
    """One release's processes, as the project specifies them: its API and its engines."""

    api: ServiceSpec
    engines: list[ServiceSpec]

    @classmethod
    def of(cls, ctx: RunContext, role: str) -> _Role:
        specs = ctx.project.services(ctx.release(role), ctx.deployment, role)
        apis = [spec for spec in specs if spec.name.endswith("-api")]
        engines = [spec for spec in specs if not spec.name.endswith("-api")]
        if len(apis) != 1 or len(engines) != ctx.deployment.engines:
            raise EnvironmentProblem(
                f"--mode rolling needs one API and {ctx.deployment.engines} engine services "
                f"for the {role} release; {ctx.project.name} gives "
                f"{', '.join(spec.name for spec in specs)}")
        return cls(apis[0], engines)


@dataclass(frozen=True)
class _Services:
    base: _Role
    target: _Role

    @classmethod
    def of(cls, ctx: RunContext) -> _Services:
        return cls(_Role.of(ctx, "base"), _Role.of(ctx, "target"))

    def engine_logs(self) -> dict[str, Path]:
        return {spec.name: _log_file(spec) for spec in [*self.base.engines, *self.target.engines]}

    def role_of(self, name: str) -> str:
        """``base`` or ``target`` for one of the services ("" for another)."""
        for role, specs in (("base", self.base), ("target", self.target)):
            if name in {spec.name for spec in [specs.api, *specs.engines]}:
                return role
        return ""


class _Timeline:
    def __init__(self, ctx: RunContext, workload: Workload, result: StepResult) -> None:
        self.ctx, self.workload, self.result = ctx, workload, result
        self.order: list[str] = ["before"]
        self.started = time.monotonic()
        #: the base engine the test hook killed, if it did
        self.killed: Kill | None = None

    def step(self, label: str, detail: str = "") -> None:
        self.workload.set_step(label)
        self.order.append(label)
        self.ctx.supervisor.note(STEP, label, detail)
        self.result.messages.append(f"[{time.monotonic() - self.started:6.1f} s] step {label}"
                                    + (f": {detail}" if detail else ""))
        self.ctx.say(f"rolling: {label}")


def attribute_engines(records: list[OpRecord], logs: dict[str, Path]) -> None:
    """Fill each record's ``engines``: the engine services whose logs carry its request ids."""
    seen: dict[str, set[bytes]] = {}
    for name, path in logs.items():
        seen[name] = set(REQ.findall(path.read_bytes())) if path.is_file() else set()
    for record in records:
        ids = {rid.encode() for rid in record.request_ids}
        record.engines = sorted(name for name, found in seen.items() if ids & found)


def _left_in_progress(client: HeatClient, prefix: str) -> list[dict[str, Any]]:
    return [{"name": s["stack_name"], "id": s["id"], "status": s["stack_status"],
             "reason": s.get("stack_status_reason", "")}
            for s in client.list_stacks()
            if s["stack_name"].startswith(prefix) and s["stack_status"].endswith("IN_PROGRESS")]


def _cleanup(client: HeatClient, prefix: str) -> int:
    """Delete the workload's stacks, so the post-upgrade suite sees the stacks it made only."""
    mine = [s for s in client.list_stacks() if s["stack_name"].startswith(prefix)]
    for stack in mine:
        client.delete_stack(f"{stack['stack_name']}/{stack['id']}")
    for stack in mine:
        client.wait_for(f"{stack['stack_name']}/{stack['id']}", {"DELETE_COMPLETE"}, 180)
    return len(mine)


def workload_prefix(ctx: RunContext) -> str:
    """``wl`` in a run's first attempt at the step, ``wl2``, ``wl3``... in the next ones
    (``--resume``, ``--only``): a failed attempt leaves its stacks, and a create reusing one
    of their names would be refused (409) and count as a failure."""
    attempt = ctx.store.get(RUNNER, ATTEMPTS)
    count = attempt if isinstance(attempt, int) else 1
    return WORKLOAD_PREFIX if count <= 1 else f"{WORKLOAD_PREFIX}{count}"


def _workload(ctx: RunContext) -> Workload:
    options = ctx.options
    limits = WorkloadLimits(max_ops=options.workload_ops, max_seconds=options.workload_seconds,
                            rate=options.workload_rate, op_timeout=options.workload_op_timeout)
    return Workload(client_factory(ctx), limits, parse_mix(options.workload_mix),
                    prefix=workload_prefix(ctx))


def rolling_upgrade(ctx: RunContext) -> StepResult:
    """Upgrade base -> target one service at a time while a workload keeps running."""
    result = StepResult(STEP, Status.PASSED)
    services = _Services.of(ctx)  # before anything starts: a project it cannot upgrade fails
    kill = engine_to_kill(len(services.base.engines))
    attempt = ctx.store.get(RUNNER, ATTEMPTS)
    ctx.store.save(RUNNER, ATTEMPTS, (attempt if isinstance(attempt, int) else 0) + 1)
    ctx.start_project("base")
    base, target = ctx.release("base"), ctx.release("target")
    versions = rpc_api_versions(ctx)
    result.messages.append(f"engine RPC API: base {base.label} {versions['base']}, "
                           f"target {target.label} {versions['target']}")
    workload = _workload(ctx)
    timeline = _Timeline(ctx, workload, result)
    workload.start()
    try:
        time.sleep(SETTLE_SECONDS)
        if _upgrade(ctx, services, timeline, kill):
            time.sleep(SETTLE_SECONDS)
            # the workload goes on until it has made its minimum (bounded by its own limits)
            while len(workload.records) < ctx.options.workload_min_ops and not workload.done:
                time.sleep(0.5)
    finally:
        records = workload.stop()
        _report(ctx, result, records, timeline.order, versions, services,
                killed=timeline.killed)
    return result


def _stop_base_engines(ctx: RunContext, services: _Services, timeline: _Timeline,
                       kill: int | None) -> None:
    """Base engines stopped one at a time: gracefully, or base engine ``kill`` SIGKILLed (the
    test hook KILL_ENV)."""
    for index, spec in enumerate(services.base.engines, start=1):
        label, crash = f"stop-base-engine-{index}", index == kill
        how = f"SIGKILL, not drained: test hook {KILL_ENV}" if crash else "graceful, SIGTERM"
        timeline.step(label, f"{spec.name} ({how})")
        if crash:
            timeline.killed = _kill_when_busy(ctx, spec, label, timeline)
            continue
        code = ctx.supervisor.stop(spec.name)
        timeline.result.messages.append(f"{spec.name} stopped: exit code {code}")


def _kill_when_busy(ctx: RunContext, spec: ServiceSpec, label: str, timeline: _Timeline) -> Kill:
    """SIGKILL the engine once it is working on a workload operation (see wait_until_busy)."""
    waiting = time.monotonic()
    busy = wait_until_busy(lambda: list(timeline.workload.records), _log_file(spec))
    kill = Kill(spec.name, label, time.time(), busy.seq if busy else None,
                round(time.monotonic() - waiting, 2))
    code = ctx.supervisor.stop(spec.name, crash=True)
    seen = f"while working on #{busy.seq} {busy.op} {busy.stack}" if busy else \
        "with no workload operation seen in its log"
    timeline.result.messages.append(f"{spec.name} killed {seen} (after {kill.waited:.1f} s): "
                                    f"exit code {code}")
    return kill


def _upgrade(ctx: RunContext, services: _Services, timeline: _Timeline,
             kill: int | None = None) -> bool:
    """The procedure, db_sync to the API switch; False when db_sync failed (a finding)."""
    result, base, target = timeline.result, ctx.release("base"), ctx.release("target")
    timeline.step("db-sync", f"heat-manage db_sync of {target.label} with {base.label} running")
    # saved before it runs: a db_sync that fails or is cut short may have migrated part of the
    # schema already, and a rerun of this step would start the base release on it
    ctx.store.save(RUNNER, DB_SYNCED, True)
    outcome = ctx.project.db_sync(target, ctx.deployment)
    result.messages.append(f"db_sync {target.label}: exit {outcome.returncode} in "
                           f"{outcome.duration:.1f} s")
    if not outcome.ok:
        result.findings.append(Finding(
            STEP, "error", f"db_sync of {target.label} failed under the running base",
            found=f"exit {outcome.returncode}", remedy="see logs/db_sync-*.log"))
        return False
    timeline.step("start-target-engines",
                  ", ".join(spec.name for spec in services.target.engines))
    for spec in services.target.engines:
        svc = ctx.supervisor.start(spec)
        result.messages.append(f"{spec.name} ready after {svc.ready_after or 0:.1f} s")
    _stop_base_engines(ctx, services, timeline, kill)
    api = services.target.api
    timeline.step("switch-api", f"{services.base.api.name} -> {api.name}")
    ctx.supervisor.stop(services.base.api.name)
    svc = ctx.supervisor.start(api)
    result.messages.append(f"{api.name} ready after {svc.ready_after or 0:.1f} s")
    ctx.running_role = "target"
    ctx.write_endpoint()
    timeline.step("after", f"{target.label} only")
    return True


def _inspect_stacks(ctx: RunContext, result: StepResult) -> tuple[list[dict[str, Any]], int]:
    """The workload's stacks left IN_PROGRESS; when none is, the stacks are deleted (how many
    is the second value)."""
    prefix = f"{workload_prefix(ctx)}-"
    try:
        with client_factory(ctx)() as client:
            in_progress = _left_in_progress(client, prefix)
            return in_progress, 0 if in_progress else _cleanup(client, prefix)
    except Exception as exc:  # the API may be down when the procedure itself failed
        result.messages.append(f"workload stacks not inspected: {exc}")
        return [], 0


def _report(ctx: RunContext, result: StepResult, records: list[OpRecord], order: list[str],
            versions: dict[str, str], services: _Services, *,
            killed: Kill | None = None) -> WorkloadReport:
    attribute_engines(records, services.engine_logs())
    in_progress, cleaned = _inspect_stacks(ctx, result)
    report = build_report(records, order, in_progress)
    flying = in_flight_at(killed, records) if killed else []
    blamed = blame(killed, flying, report) if killed else []
    result.messages.extend(report.lines())
    if killed:
        result.messages.append(f"{killed.service} was killed (SIGKILL, test hook {KILL_ENV}) "
                               f"at step {killed.step} with {len(flying)} workload "
                               "operation(s) in flight")
        result.messages.extend(blamed)
    for record in records:
        if record.latency > SLOW_SECONDS:
            result.messages.append(
                f"workload slow #{record.seq} {record.op} {record.stack}: "
                f"{record.latency:.1f} s, started in {record.step}, ended in {record.end_step}")
        if record.resent:
            result.messages.append(
                f"workload re-sent #{record.seq} {record.op} {record.stack}: its answer was "
                f"lost {record.resent} time(s), started in {record.step}, ended in "
                f"{record.end_step}")
    if cleaned:
        result.messages.append(f"workload stacks deleted after the report: {cleaned}")
    if not set(ROLES) <= {services.role_of(name) for name in report.engines}:
        result.messages.append("mixed versions NOT shown: operations were served by "
                               f"{', '.join(sorted(report.engines)) or 'no engine seen'}")
    result.findings.extend(_findings(report))
    data = {"report": report.to_dict(), "records": [r.to_dict() for r in records],
            "rpc_api_versions": versions, "steps": order,
            "killed": {**asdict(killed), "in_flight": [r.seq for r in flying]}
            if killed else None}
    write_atomic(ctx.run_dir / WORKLOAD_FILE, json.dumps(data, indent=1))
    if result.failed_findings:
        result.status = Status.FAILED
    return report


def _findings(report: WorkloadReport) -> list[Finding]:
    """An error per failed operation and per stack left IN_PROGRESS."""
    found = [Finding(
        "workload", "error", f"{failure['op']} of {failure['stack']} failed during step "
        f"{failure['step']}" + (f", {failure['fault']}" if failure.get("fault") else ""),
        where=f"operation #{failure['seq']} (ended in {failure['end_step']})",
        found=failure["error"]) for failure in report.failures]
    found += [Finding(
        "workload", "error", f"stack {stack['name']} left {stack['status']}"
        + (f", {stack['fault']}" if stack.get("fault") else ""),
        where=stack["id"], found=stack["reason"],
        remedy="a stack stuck IN_PROGRESS: see docs/rolling-upgrade.md")
        for stack in report.in_progress]
    return found
