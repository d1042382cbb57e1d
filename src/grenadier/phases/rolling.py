"""rolling-upgrade: Heat upgraded piece by piece under a live workload (``--mode rolling``).

Follows Heat's "Rolling Upgrades" procedure (doc/source/operating_guides/upgrades_guide.rst)
on one machine, with the run's one RabbitMQ vhost shared by both releases (see
docs/rolling-upgrade.md for which steps are followed and why):

  before        base API + base engines serve the workload
  db-sync       the target's ``heat-manage db_sync`` while the base release runs (guide step 2)
  start-target-engines  target engines started beside the base engines (guide step 5)
  stop-base-engine-<i>  base engines stopped one at a time, gracefully (guide steps 5, 7)
  switch-api    base API stopped, target API started on the same port (guide step 6)
  after         target API + target engines serve the workload

Each step is an event of the run's timeline and a message of the step; every workload
operation carries the step it started in.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from grenadier.checks.api import Finding
from grenadier.phases.context import RUNNER, RunContext
from grenadier.phases.result import Status, StepResult
from grenadier.plugins.heat.client import HeatClient
from grenadier.services.api import ServiceEvent
from grenadier.workload.generator import OpRecord, Workload, WorkloadLimits
from grenadier.workload.report import WorkloadReport, build_report

STEP = "rolling-upgrade"
WORKLOAD_FILE = "workload.json"
#: seconds the workload runs on the base release before, and on the target after, the upgrade
SETTLE_SECONDS = 10.0
#: an operation slower than this is listed (a stall, not a failure)
SLOW_SECONDS = 10.0
_REQ = re.compile(rb"req-[0-9a-f-]{36}")
_RPC_VERSION = re.compile(r"RPC_API_VERSION = '([0-9.]+)'")


def _client_factory(ctx: RunContext) -> Any:
    endpoint = ctx.project.endpoint(ctx.deployment)
    url, project, user = str(endpoint["url"]), str(endpoint["project"]), str(endpoint["user"])
    keystone = ctx.deployment.keystone

    def make() -> HeatClient:
        # retries: connection refused while the API is switched counts as the load balancer's
        # queueing (about 64 s of back-off); a request that reached Heat is never retried
        # blindly (see HeatClient.request)
        transport = None
        if keystone is not None:
            from grenadier.services.keystone import TokenTransport

            transport = TokenTransport(keystone.creds.v3, keystone.creds.tests)
        return HeatClient(url, project, user, retries=8, backoff=0.25, transport=transport)

    return make


def rpc_api_versions(ctx: RunContext) -> dict[str, str]:
    """The engine RPC API version each release's heat-engine speaks (from its source)."""
    versions = {}
    for role in ("base", "target"):
        release = ctx.release(role)
        found = list(release.venv.glob("lib/python*/site-packages/heat/engine/service.py"))
        match = _RPC_VERSION.search(found[0].read_text(encoding="utf-8")) if found else None
        versions[role] = match.group(1) if match else "unknown"
    return versions


class _Timeline:
    def __init__(self, ctx: RunContext, workload: Workload, result: StepResult) -> None:
        self.ctx, self.workload, self.result = ctx, workload, result
        self.order: list[str] = ["before"]
        self.started = time.monotonic()

    def step(self, label: str, detail: str = "") -> None:
        self.workload.set_step(label)
        self.order.append(label)
        self.ctx.supervisor.events.append(ServiceEvent(time.time(), "rolling-upgrade", label,
                                                       detail))
        self.result.messages.append(f"[{time.monotonic() - self.started:6.1f} s] step {label}"
                                    + (f": {detail}" if detail else ""))
        self.ctx.say(f"rolling: {label}")


def _engine_logs(ctx: RunContext) -> dict[str, Path]:
    logs = ctx.deployment.logs
    return {f"heat-{role}-engine-{i}": logs / f"heat-{role}-engine-{i}.log"
            for role in ("base", "target") for i in range(1, ctx.deployment.engines + 1)}


def attribute_engines(records: list[OpRecord], logs: dict[str, Path]) -> None:
    """Fill each record's ``engines``: the engine services whose logs carry its request ids."""
    seen: dict[str, set[bytes]] = {}
    for name, path in logs.items():
        seen[name] = set(_REQ.findall(path.read_bytes())) if path.is_file() else set()
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


def rolling_upgrade(ctx: RunContext) -> StepResult:
    """Upgrade base -> target one service at a time while a workload keeps running."""
    result = StepResult(STEP, Status.PASSED)
    ctx.start_project("base")
    base, target = ctx.release("base"), ctx.release("target")
    versions = rpc_api_versions(ctx)
    result.messages.append(f"engine RPC API: base {base.label} {versions['base']}, "
                           f"target {target.label} {versions['target']}")
    options = ctx.options
    limits = WorkloadLimits(max_ops=options.workload_ops, max_seconds=options.workload_seconds,
                            rate=options.workload_rate)
    from grenadier.workload.generator import parse_mix

    workload = Workload(_client_factory(ctx), limits, parse_mix(options.workload_mix),
                        prefix="wl")
    timeline = _Timeline(ctx, workload, result)
    target_specs = ctx.project.services(target, ctx.deployment, "target")
    api_spec, engine_specs = target_specs[0], target_specs[1:]
    workload.start()
    try:
        time.sleep(SETTLE_SECONDS)
        timeline.step("db-sync", f"heat-manage db_sync of {target.label} with {base.label} "
                                 "running")
        outcome = ctx.project.db_sync(target, ctx.deployment)
        result.messages.append(f"db_sync {target.label}: exit {outcome.returncode} in "
                               f"{outcome.duration:.1f} s")
        if not outcome.ok:
            result.findings.append(Finding(
                STEP, "error", f"db_sync of {target.label} failed under the running base",
                found=f"exit {outcome.returncode}", remedy="see logs/db_sync-*.log"))
            return result
        timeline.step("start-target-engines",
                      ", ".join(spec.name for spec in engine_specs))
        for spec in engine_specs:
            svc = ctx.supervisor.start(spec)
            result.messages.append(f"{spec.name} ready after {svc.ready_after or 0:.1f} s")
        for index in range(1, ctx.deployment.engines + 1):
            name = f"{ctx.project.name}-base-engine-{index}"
            timeline.step(f"stop-base-engine-{index}", f"{name} (graceful, SIGTERM)")
            code = ctx.supervisor.stop(name)
            result.messages.append(f"{name} stopped: exit code {code}")
        timeline.step("switch-api", f"heat-base-api -> {api_spec.name}")
        ctx.supervisor.stop(f"{ctx.project.name}-base-api")
        svc = ctx.supervisor.start(api_spec)
        result.messages.append(f"{api_spec.name} ready after {svc.ready_after or 0:.1f} s")
        ctx.running_role = "target"
        ctx.write_endpoint()
        timeline.step("after", f"{target.label} only")
        time.sleep(SETTLE_SECONDS)
        # the workload goes on until it has made its minimum (bounded by its own limits)
        while len(workload.records) < options.workload_min_ops and not workload.done:
            time.sleep(0.5)
    finally:
        records = workload.stop()
        _report(ctx, result, records, timeline.order, versions)
    return result


def _report(ctx: RunContext, result: StepResult, records: list[OpRecord], order: list[str],
            versions: dict[str, str]) -> WorkloadReport | None:
    attribute_engines(records, _engine_logs(ctx))
    in_progress: list[dict[str, Any]] = []
    cleaned = 0
    try:
        with _client_factory(ctx)() as client:
            in_progress = _left_in_progress(client, "wl-")
            if not in_progress:
                cleaned = _cleanup(client, "wl-")
    except Exception as exc:  # the API may be down when the procedure itself failed
        result.messages.append(f"workload stacks not inspected: {exc}")
    report = build_report(records, order, in_progress)
    result.messages.extend(report.lines())
    for record in records:
        if record.latency > SLOW_SECONDS:
            result.messages.append(
                f"workload slow #{record.seq} {record.op} {record.stack}: "
                f"{record.latency:.1f} s, started in {record.step}, ended in {record.end_step}")
    if cleaned:
        result.messages.append(f"workload stacks deleted after the report: {cleaned}")
    roles = {e.split("-")[1] for e in report.engines}
    if not {"base", "target"} <= roles:
        result.messages.append("mixed versions NOT shown: operations were served by "
                               f"{', '.join(sorted(report.engines)) or 'no engine seen'}")
    for failure in report.failures:
        result.findings.append(Finding(
            "workload", "error", f"{failure['op']} of {failure['stack']} failed during step "
            f"{failure['step']}", where=f"operation #{failure['seq']} (ended in "
            f"{failure['end_step']})", found=failure["error"]))
    for stack in report.in_progress:
        result.findings.append(Finding(
            "workload", "error", f"stack {stack['name']} left {stack['status']}",
            where=stack["id"], found=stack["reason"],
            remedy="a stack stuck IN_PROGRESS: see docs/rolling-upgrade.md"))
    data = {"report": report.to_dict(), "records": [r.to_dict() for r in records],
            "rpc_api_versions": versions, "steps": order}
    ctx.store.save(RUNNER, "workload", data)
    import json

    (ctx.run_dir / WORKLOAD_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")
    if result.failed_findings:
        result.status = Status.FAILED
    return report
