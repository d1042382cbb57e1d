"""The crash scenario (``--shutdown crash``): stack operations in flight when Heat is SIGKILLed,
and what post-upgrade finds of them and recovers.

shutdown, just before the kill: one create, one update and one delete are started, each on a
stack of its own whose ``OS::Heat::TestResource`` takes long on purpose, and each is waited
for until the engine is working on its resource; then every stack IN_PROGRESS is listed:
what the kill cuts short (the built-in suite's ``in_progress`` stack among them).

post-upgrade, before the suite: the stacks still IN_PROGRESS under the target are listed
(found); the documented remedy is applied to those the shutdown started (an update, which
takes over the dead engine's lock, or for a delete the delete sent again) and each is checked
and then deleted. The others are left to the tests that made them (the built-in suite has its
own remedy test); after the suite, each found stack's status is reported again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from grenadier.errors import describe
from grenadier.host import write_atomic
from grenadier.model.findings import Finding
from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.phases.rolling import client_factory
from grenadier.phases.rolling_report import in_progress
from grenadier.phases.suite import run_phase
from grenadier.plugins.heat.suite.catalog import wait_resource
from grenadier.services.heat_client import HeatClient, HeatError, StackRef, StackWaitError
from grenadier.state import RUNNER

#: the state store key (RUNNER namespace) of what the shutdown step started and saw
STORE_KEY = "crash"
CRASH_FILE = "crash.json"
PREFIX = "grenadier-crash"
#: the operations started just before the kill
KINDS = ("create", "update", "delete")
#: how long the cut-short create and update would have lasted
LONG = 600
#: how long the cut-short delete lasts: long enough to still run at the kill (a few seconds
#: later), short because the delete sent again as its remedy waits it again
DELETE_WAIT = 15
#: how long one operation (or remedy) may take here
TIMEOUT = 180.0
REMEDY = ("update the stack (e.g. `openstack stack update --existing <stack>`), which takes over "
          "the dead engine's lock; a stack left DELETE_IN_PROGRESS: delete it again; or, with "
          "Heat stopped, `heat-manage reset_stack_status <stack id>`")
TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2018-08-31",
    "description": "grenadier crash scenario: an operation in flight when the engine is killed",
    "parameters": {"value": {"type": "string", "default": "before"},
                   **{f"{action}_wait": {"type": "number", "default": 0}
                      for action in ("create", "update", "delete")}},
    "resources": {"slow": {"type": "OS::Heat::TestResource", "properties": {
        "value": {"get_param": "value"},
        "action_wait_secs": {action: {"get_param": f"{action}_wait"}
                             for action in ("create", "update", "delete")}}}},
    "outputs": {"value": {"value": {"get_attr": ["slow", "output"]}}},
}
IN_PROGRESS = "_IN_PROGRESS"
#: what Heat (or the way to it) can do to the scenario: each is reported and the run goes on;
#: any other exception is a bug in grenadier and propagates (the runner records its traceback)
HEAT_FAILURES: tuple[type[Exception], ...] = (HeatError, StackWaitError, httpx.HTTPError,
                                               OSError)


def _start_one(client: HeatClient, kind: str, name: str) -> dict[str, str]:
    """Start one ``kind`` operation and return once its resource is in progress in the engine."""
    params = {"create_wait": LONG} if kind == "create" else \
        {"delete_wait": DELETE_WAIT} if kind == "delete" else {}
    ref = client.create_stack(name, TEMPLATE, params)
    if kind != "create":
        client.wait_for(ref, {"CREATE_COMPLETE"}, TIMEOUT)
        if kind == "update":
            client.patch_update(ref, {"value": "during", "update_wait": LONG})
        else:
            client.delete_stack(ref)
    wait_resource(client, ref, "slow", {f"{kind.upper()}_IN_PROGRESS"}, TIMEOUT)
    return {"kind": kind, "name": name, "id": ref.id}


def _start_all(ctx: RunContext) -> list[dict[str, str]]:
    """Start one operation of each kind, side by side; each entry names its stack (its id
    when created) and, when it could not be brought in flight, why (``error``)."""
    make = client_factory(ctx)
    suffix = f"{int(time.time()) % 100000:05d}"

    def one(kind: str) -> dict[str, str]:
        name = f"{PREFIX}-{kind}-{suffix}"
        try:
            with make() as client:
                return _start_one(client, kind, name)
        except HEAT_FAILURES as exc:  # the kill must happen whatever Heat did here
            return {"kind": kind, "name": name, "id": "", "error": describe(exc)}

    with ThreadPoolExecutor(len(KINDS), thread_name_prefix="crash") as pool:
        return list(pool.map(one, KINDS))


def start_in_flight(ctx: RunContext, result: StepResult) -> None:
    """Before the kill: start the operations, list what is in flight, save both in the store."""
    if ctx.running_role is None:
        result.messages.append("crash: Heat is not running, no operation was started before "
                               "the kill")
        return
    started = _start_all(ctx)
    flying: list[dict[str, str]] = []
    try:
        with client_factory(ctx)() as client:
            flying = in_progress(client)
    except HEAT_FAILURES as exc:
        started.append({"kind": "list", "name": "", "id": "", "error": describe(exc)})
    for failed in (s for s in started if s.get("error")):
        result.findings.append(Finding(
            "crash.in-flight", "warning", f"the crash scenario could not bring its {failed['kind']}"
            " in flight before the kill", where=failed["name"], found=failed["error"]))
    for stack in flying:
        result.messages.append(f"in flight at the kill: {stack['name']} ({stack['id']}) "
                               f"{stack['status']}")
    ok = [s["kind"] for s in started if not s.get("error")]
    result.messages.append(f"crash: {len(ok)} operation(s) started just before the kill "
                           f"({', '.join(ok) or 'none'}); {len(flying)} stack(s) IN_PROGRESS "
                           "at the kill")
    ctx.store.save(RUNNER, STORE_KEY, {"started": started, "in_flight": flying})


@dataclass
class Recovery:
    """One stack found IN_PROGRESS under the target, and what its remedy did."""

    name: str
    id: str
    status: str
    reason: str
    #: the crash scenario's operation that left it (create, update, delete), "" for another
    kind: str = ""
    remedy: str = ""
    recovered: bool = False
    after: str = ""
    seconds: float = 0.0
    error: str = ""

    def line(self) -> str:
        if not self.kind:
            return f"left IN_PROGRESS: {self.name} {self.status}: not started by the crash " \
                   "scenario, its remedy is left to the test that made it (the built-in " \
                   "suite's: test_stack_left_in_progress_by_dead_engine); after the suite: " \
                   f"{self.after or 'not checked'}"
        if self.recovered:
            then = "" if self.after == "DELETE_COMPLETE" else ", then deleted"
            return f"recovered: {self.name} (was {self.status}): {self.remedy} -> " \
                   f"{self.after} in {self.seconds:.1f} s{then}"
        return f"NOT recovered: {self.name} (was {self.status}): {self.remedy}: {self.error}"


def _remedy(client: HeatClient, found: Recovery) -> None:
    """Apply the documented remedy to one stack the crash scenario started, check it, delete it."""
    ref = StackRef(found.name, found.id)
    started = time.monotonic()
    if found.status == "DELETE_IN_PROGRESS":
        found.remedy = "delete sent again"
        client.delete_stack(ref)
        client.wait_for(ref, {"DELETE_COMPLETE"}, TIMEOUT)
        found.after = "DELETE_COMPLETE"
    else:
        found.remedy = "update (PATCH, the waits set to 0)"
        before = client.get_stack(ref)
        client.patch_update(ref, {"value": "recovered", "create_wait": 0, "update_wait": 0,
                                  "delete_wait": 0})
        client.wait_for(ref, {"UPDATE_COMPLETE"}, TIMEOUT, before=before)
        out = client.output_values(ref)
        if out != {"value": "recovered"}:
            raise StackWaitError(f"stack {ref}: after the remedy, outputs are {out!r}")
        found.after = "UPDATE_COMPLETE"
    found.seconds = time.monotonic() - started
    if found.after != "DELETE_COMPLETE":
        client.delete_stack(ref)
        client.wait_for(ref, {"DELETE_COMPLETE"}, TIMEOUT)
    found.recovered = True


def _attempt(make: Callable[[], HeatClient], found: Recovery) -> Recovery:
    try:
        with make() as client:
            _remedy(client, found)
    except HEAT_FAILURES as exc:  # a remedy that does not work is the finding, not a crash
        found.error = describe(exc)
    return found


def recover(ctx: RunContext) -> list[Recovery]:
    """Under the target: find the stacks left IN_PROGRESS, remedy those the crash started."""
    saved = ctx.store.get(RUNNER, STORE_KEY) or {}
    # by name: a stack whose operation failed to get in flight may exist all the same
    kinds = {s["name"]: s["kind"] for s in saved.get("started", []) if s.get("name")}
    make = client_factory(ctx)
    with make() as client:
        found = [Recovery(s["name"], s["id"], s["status"], s["reason"], kinds.get(s["name"], ""))
                 for s in in_progress(client)]
    mine = [f for f in found if f.kind]
    if mine:
        with ThreadPoolExecutor(len(mine), thread_name_prefix="crash-remedy") as pool:
            list(pool.map(lambda f: _attempt(make, f), mine))
    return found


def delete_leftovers(ctx: RunContext, found: list[Recovery]) -> list[dict[str, str]]:
    """Under the target, before the suite: delete the stacks the crash scenario started that
    were not found IN_PROGRESS (their operation never got in flight, its call failed, or Heat
    finished it), so that the post-upgrade suite sees only its own stacks. Each entry names a
    stack, its status then, and why its delete failed (``error``) if it did."""
    saved = ctx.store.get(RUNNER, STORE_KEY) or {}
    # by name: a stack whose start failed has no id saved, yet it may exist
    names = {s["name"] for s in saved.get("started", []) if s.get("name")}
    names -= {f.name for f in found}  # those are remedied (and deleted) by recover
    with client_factory(ctx)() as client:
        left = [{"name": s["stack_name"], "id": s["id"], "status": str(s["stack_status"])}
                for s in client.list_stacks() if s["stack_name"] in names]
        # all deletes first, then the waits: the delete kind's resource waits DELETE_WAIT s
        for stack in left:
            _delete_one(stack, client.delete_stack)
        for stack in (s for s in left if not s.get("error")):
            _delete_one(stack, lambda ref: client.wait_for(ref, {"DELETE_COMPLETE"}, TIMEOUT))
    return left


def _delete_one(stack: dict[str, str], call: Callable[[StackRef], object]) -> None:
    try:
        call(StackRef(stack["name"], stack["id"]))
    except HEAT_FAILURES as exc:  # a stack left behind is reported, the suite still runs
        stack["error"] = describe(exc)


def recheck(ctx: RunContext, found: list[Recovery]) -> None:
    """After the suite: the status now of each found stack the crash scenario did not start."""
    others = [f for f in found if not f.kind]
    if not others:
        return
    with client_factory(ctx)() as client:
        now = {s["id"]: str(s["stack_status"]) for s in client.list_stacks()}
    for found_stack in others:
        found_stack.after = now.get(found_stack.id, "gone (deleted)")
        found_stack.recovered = not found_stack.after.endswith(IN_PROGRESS)


def findings(found: list[Recovery], fail_on_stuck: bool) -> list[Finding]:
    """A finding per stack the crash scenario left IN_PROGRESS: a warning when the remedy
    worked (an error with --fail-on-stuck), an error when it did not."""
    out = []
    for stack in (f for f in found if f.kind):
        state = (f"recovered by the remedy ({stack.remedy}: {stack.after} in "
                 f"{stack.seconds:.1f} s)") if stack.recovered else "the remedy did NOT work"
        out.append(Finding(
            "crash.stack-left-in-progress",
            "error" if fail_on_stuck or not stack.recovered else "warning",
            f"stack {stack.name}: its {stack.kind}, in flight when the engine was killed, left "
            f"it {stack.status} under the new release; {state}",
            where=f"stack {stack.name} ({stack.id})",
            expected="the stack FAILED or finished, so that it can be operated on",
            found=f"{stack.status}: {stack.reason or '(no reason)'}"
                  + (f"; remedy: {stack.error}" if stack.error else ""),
            remedy=REMEDY))
    return out


def _leftover_lines(result: StepResult, deleted: list[dict[str, str]]) -> None:
    for stack in deleted:
        if not stack.get("error"):
            result.messages.append(f"deleted: {stack['name']} ({stack['status']}): started by "
                                   "the crash scenario, not left IN_PROGRESS")
            continue
        result.findings.append(Finding(
            "crash.cleanup", "warning", f"stack {stack['name']}, started by the crash scenario, "
            "could not be deleted: the post-upgrade suite sees it",
            where=f"stack {stack['name']} ({stack['id']})", found=stack["error"]))


def report(ctx: RunContext, result: StepResult, found: list[Recovery],
           deleted: list[dict[str, str]] | None = None) -> None:
    """Add the recovery to the post-upgrade step (messages, findings) and write crash.json;
    ``deleted``: the scenario's other stacks (see delete_leftovers)."""
    saved = ctx.store.get(RUNNER, STORE_KEY) or {}
    result.messages.extend(stack.line() for stack in found)
    _leftover_lines(result, deleted or [])
    recovered = sum(1 for f in found if f.recovered)
    result.messages.append(f"crash recovery: {len(found)} stack(s) found IN_PROGRESS under "
                           f"the target, {recovered} recovered")
    result.findings.extend(findings(found, ctx.options.fail_on_stuck))
    if result.failed_findings and result.status == Status.PASSED:
        result.status = Status.FAILED
    data = {**saved, "found": [asdict(f) for f in found], "recovered": recovered,
            "deleted": deleted or []}
    write_atomic(ctx.run_dir / CRASH_FILE, json.dumps(data, indent=1))


def post_upgrade(ctx: RunContext) -> StepResult:
    """The post-upgrade step; after a crash shutdown, framed by the recovery of its stacks."""
    if ctx.options.shutdown != "crash" or ctx.store.get(RUNNER, STORE_KEY) is None:
        return run_phase(ctx, "post-upgrade")
    failures: list[Finding] = []
    found: list[Recovery] = []
    deleted: list[dict[str, str]] = []
    try:
        found = recover(ctx)
        deleted = delete_leftovers(ctx, found)
    except HEAT_FAILURES as exc:  # Heat unreachable: the suite will say more; the step fails
        failures.append(Finding("crash.stack-left-in-progress", "error",
                                "the stacks left IN_PROGRESS by the crash could not be listed",
                                found=describe(exc)))
    result = run_phase(ctx, "post-upgrade")
    result.findings += failures
    try:
        recheck(ctx, found)
    except HEAT_FAILURES as exc:
        result.messages.append(f"crash: found stacks not checked again after the suite: {exc}")
    report(ctx, result, found, deleted)
    return result
