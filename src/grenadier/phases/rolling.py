"""rolling-upgrade: Heat upgraded piece by piece under a live workload (``--mode rolling``).

Follows Heat's "Rolling Upgrades" procedure (doc/source/operating_guides/upgrades_guide.rst)
on one machine, with the run's one RabbitMQ vhost shared by both releases (see
docs/rolling-upgrade.md for which steps are followed and why):

  before        base API + base engines serve the workload
  db-sync       the target's ``heat-manage db_sync`` while the base release runs (guide step 2)
  start-target-engines  target engines started beside the base engines (guide step 5)
  stop-base-engine-<i>  base engines stopped one at a time, gracefully (guide steps 5, 7);
                (a test hook SIGKILLs one instead: phases/rolling_kill.py)
  held-target-only  the old API served by the target engines alone: the smoke tests and the
                post-upgrade operations that destroy no old stack (phases/rolling_window.py)
  held-mixed    the base engines started again beside the target engines: the same again
  stop-base-engines  the base engines stopped again, gracefully
  switch-api    base API stopped, target API started on the same port (guide step 6)
  after         target API + target engines serve the workload

Each step is an event of the run's timeline and a message of the step; every workload
operation carries the step it started in. Each step is held open until the workload has
started its share of operations in it (``WorkloadLimits.step_min_ops``, every kind of its
mix). The ``rolling`` checks (the RPC contract) run first, before anything changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from grenadier.errors import EnvironmentProblem
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.phases.rolling_kill import KILL_ENV, Kill, engine_to_kill, wait_until_busy
from grenadier.phases.rolling_report import (
    GracefulStop,
    Rolled,
    clean_up,
    left_in_progress,
    report_step,
)
from grenadier.phases.rolling_window import HeldWindows
from grenadier.phases.upgrade import run_checks
from grenadier.report.impact import rpc_versions
from grenadier.services.api import ServiceSpec
from grenadier.services.heat_client import HeatClient, HeatError, StackWaitError
from grenadier.services.keystone import TokenTransport
from grenadier.state import RUNNER
from grenadier.workload.generator import Workload, WorkloadLimits, parse_mix

STEP = "rolling-upgrade"
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
#: seconds a step is held open at most for the workload to start its share of operations
FILL_TIMEOUT = 60.0
#: seconds the API switch waits at most for the operations started before it
DRAIN_SECONDS = 30.0


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

    def api_logs(self) -> tuple[Path, ...]:
        return (_log_file(self.base.api), _log_file(self.target.api))

    def roles(self) -> dict[str, str]:
        """Each service's role (base or target)."""
        return {spec.name: role for role, specs in (("base", self.base), ("target", self.target))
                for spec in [specs.api, *specs.engines]}


class _Timeline:
    def __init__(self, ctx: RunContext, workload: Workload, result: StepResult) -> None:
        self.ctx, self.workload, self.result = ctx, workload, result
        self.order: list[str] = ["before"]
        self.started = time.monotonic()
        #: the base engine the test hook killed, if it did; the engines stopped gracefully
        self.killed: Kill | None = None
        self.stops: list[GracefulStop] = []

    def stop(self, names: list[str]) -> dict[str, int | None]:
        """Stop ``names`` gracefully, together; each stop on record with its window."""
        began = time.time()
        codes: dict[str, int | None] = dict.fromkeys(names)
        if len(names) == 1:
            codes[names[0]] = self.ctx.supervisor.stop(names[0])
        else:
            self.ctx.supervisor.stop_many(names)
        self.stops += [GracefulStop(name, self.order[-1], began, time.time()) for name in names]
        return codes

    def fill(self) -> None:
        """Hold the current step until the workload has started its share of operations."""
        if not self.workload.fill_step(FILL_TIMEOUT):
            self.result.messages.append(f"step {self.order[-1]}: the workload did not fill it "
                                        f"within {FILL_TIMEOUT:.0f} s")

    def step(self, label: str, detail: str = "") -> None:
        self.fill()
        self.workload.set_step(label)
        self.order.append(label)
        self.ctx.supervisor.note(STEP, label, detail)
        self.result.messages.append(f"[{time.monotonic() - self.started:6.1f} s] step {label}"
                                    + (f": {detail}" if detail else ""))
        self.ctx.say(f"rolling: {label}")


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


def _windows(ctx: RunContext) -> HeldWindows:
    """The held windows, their old stacks made by the base release now."""
    windows = HeldWindows(ctx, client_factory(ctx), workload_prefix(ctx))
    try:
        windows.prepare()
    except (HeatError, StackWaitError, httpx.HTTPError) as exc:
        raise EnvironmentProblem(f"the base release could not create the held windows' old "
                                 f"stacks: {exc}") from exc
    return windows


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
    run_checks([c for c in ctx.selected_checks("pre-migration") if c.rolling],
               ctx.check_context(), result)
    windows = _windows(ctx)
    workload = _workload(ctx)
    timeline = _Timeline(ctx, workload, result)
    workload.start()
    try:
        time.sleep(SETTLE_SECONDS)
        if _upgrade(ctx, services, timeline, windows, kill):
            time.sleep(SETTLE_SECONDS)
            # the workload goes on until it has made its minimum (bounded by its own limits)
            while len(workload.records) < ctx.options.workload_min_ops and not workload.done:
                time.sleep(0.5)
            timeline.fill()
    finally:
        records = workload.stop()
        rolled = Rolled(workload, records, timeline.order, versions, services.engine_logs(),
                        services.roles(), windows, timeline.killed,
                        api_logs=services.api_logs(), stops=tuple(timeline.stops),
                        strict=ctx.options.fail_on_stuck)
        prefix = f"{workload_prefix(ctx)}-"
        in_progress = left_in_progress(client_factory(ctx), prefix, result)
        report = report_step(result, rolled, in_progress, ctx.run_dir)
        clean_up(client_factory(ctx), prefix, windows, report, result)
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
        code = timeline.stop([spec.name])[spec.name]
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


def _held_windows(ctx: RunContext, timeline: _Timeline, windows: HeldWindows) -> None:
    """The old API served by the target engines alone, then with the base engines again."""
    timeline.step("held-target-only", "old API, target engines only: smoke tests and "
                                      "operations on old stacks")
    timeline.result.messages += windows.run("held-target-only")
    engines = _Role.of(ctx, "base").engines  # fresh specs: each is ready once it logs again
    timeline.step("held-mixed", f"{', '.join(s.name for s in engines)} started again beside "
                                "the target engines: smoke tests and operations on old stacks")
    for spec in engines:
        svc = ctx.supervisor.start(spec)
        timeline.result.messages.append(f"{spec.name} ready again after "
                                        f"{svc.ready_after or 0:.1f} s")
    timeline.result.messages += windows.run("held-mixed")
    timeline.step("stop-base-engines", f"{', '.join(s.name for s in engines)} (graceful, "
                                       "SIGTERM)")
    timeline.stop([spec.name for spec in engines])


def _upgrade(ctx: RunContext, services: _Services, timeline: _Timeline,
             windows: HeldWindows, kill: int | None = None) -> bool:
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
    _held_windows(ctx, timeline, windows)
    api = services.target.api
    before = timeline.order[-1]
    timeline.step("switch-api", f"{services.base.api.name} -> {api.name}")
    # as a load balancer drains a backend: what started before the switch ends first, so that
    # the API's downtime is the switch's own (operations started now are its)
    if not timeline.workload.drain(before, DRAIN_SECONDS):
        result.messages.append(f"switch-api: operations of {before} still in flight after "
                               f"{DRAIN_SECONDS:.0f} s")
    ctx.supervisor.stop(services.base.api.name)
    svc = ctx.supervisor.start(api)
    result.messages.append(f"{api.name} ready after {svc.ready_after or 0:.1f} s")
    ctx.running_role = "target"
    ctx.write_endpoint()
    timeline.step("after", f"{target.label} only")
    return True
