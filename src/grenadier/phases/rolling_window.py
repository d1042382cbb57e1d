"""The held windows of ``--mode rolling``: the old API served by new engines only
(``held-target-only``), then by old and new engines together (``held-mixed``), before the API
is switched. What old clients do must work there, not only what the workload happens to send.

In each window, beside the workload:

- the smoke tests (pytest, marker ``smoke``: the built-in ones and the user's), each request
  recorded with its test (``services/request_log.py``);
- the post-upgrade suite's operations that do not destroy an old stack, on copies of its old
  stacks (a parameter stack, a signalled WaitCondition, a nested stack) made by the base
  release before ``db-sync``, one set per window, so that no window, and not the post-upgrade
  suite, meets a stack another one changed: list, show and template, outputs, resources (all
  compared with what the base showed), an update with a parameter change, the WaitCondition
  signalled again, suspend and resume, ``stack check``.

Each operation is recorded with Heat's request ids and attributed to the engines whose logs
carry them (reads too: the engines log every RPC message they serve at DEBUG). Each failure is
an error finding of the rolling step, at its window.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from grenadier.errors import describe
from grenadier.execute import ExecuteRequest, run
from grenadier.model.findings import Finding
from grenadier.model.result import TestOutcome
from grenadier.phases.context import RunContext
from grenadier.phases.suite import PHASE_TIMEOUT, junit_path, phase_env, pytest_command, read_junit
from grenadier.plugins.heat.suite import catalog, inventory, operations
from grenadier.services import request_log
from grenadier.services.heat_client import HeatClient
from grenadier.workload.generator import REQUEST_ID, OpRecord, global_request_id

CHECK = "held-window"
WINDOWS = {"held-target-only": "the old API served by new engines only",
           "held-mixed": "the old API served by old and new engines together"}
Record = dict[str, Any]
Operation = Callable[[HeatClient, Record], None]
#: the suite's stacks copied for each window, each with the change it then undergoes
CHANGES: dict[str, tuple[str, Operation]] = {
    "params": ("update", operations.update_params),
    "wait_condition": ("signal", operations.signal_again),
    "nested": ("suspend-resume", operations.suspend_and_resume),
}


def _show(heat: HeatClient, rec: Record) -> None:
    ref = inventory.ref_of(rec)
    lines = inventory.diff(rec["show"], inventory.show_view(heat.get_stack(ref))) + \
        inventory.diff(rec["template"], heat.template(ref), "template")
    assert not lines, inventory.diff_report("stack show / template", ref, lines)


def _outputs(heat: HeatClient, rec: Record) -> None:
    ref = inventory.ref_of(rec)
    lines = inventory.diff(rec["outputs"], inventory.output_view(heat.outputs(ref)))
    assert not lines, inventory.diff_report("outputs", ref, lines)


def _resources(heat: HeatClient, rec: Record) -> None:
    ref = inventory.ref_of(rec)
    now = inventory.resource_view(heat.list_resources(ref, inventory.NESTED_DEPTH))
    lines = inventory.diff(rec["resources"], now)
    assert not lines, inventory.diff_report("resources", ref, lines)


def _check(heat: HeatClient, rec: Record) -> None:
    ref = inventory.ref_of(rec)
    operations.act(heat, ref, lambda: heat.check(ref), "CHECK_COMPLETE")


def _chain(key: str) -> list[tuple[str, Operation]]:
    """A stack's operations, in order: reads first (nothing has changed it), its change, a
    check of the changed stack."""
    return [("show", _show), ("outputs", _outputs), ("resources", _resources), CHANGES[key],
            ("check", _check)]


class HeldWindows:
    """The window stacks (made before the upgrade) and what each window did."""

    def __init__(self, ctx: RunContext, client: Callable[[], HeatClient], prefix: str) -> None:
        self.ctx, self._client, self.prefix = ctx, client, prefix
        #: window -> suite key -> the stack's record (as inventory.record makes it)
        self.stacks: dict[str, dict[str, Record]] = {}
        self.records: dict[str, list[OpRecord]] = {}
        self.tests: dict[str, list[TestOutcome]] = {}
        self.findings: list[Finding] = []
        self._seq = itertools.count(1)
        self._current = threading.local()

    # before the upgrade --------------------------------------------------------------------
    def prepare(self) -> None:
        """Copies of the suite's stacks, made by the base release: one set per window."""
        jobs = [(window, key) for window in WINDOWS for key in CHANGES]
        workers = 1 if self.ctx.db.serial else len(jobs)
        with ThreadPoolExecutor(workers, thread_name_prefix="window-stacks") as pool:
            made = list(pool.map(lambda job: self._make(*job), jobs))
        for (window, key), rec in zip(jobs, made, strict=True):
            self.stacks.setdefault(window, {})[key] = rec

    def _make(self, window: str, key: str) -> Record:
        tag = "only" if window == "held-target-only" else "mixed"
        spec = replace(catalog.SPEC_BY_KEY[key], key=f"{self.prefix}_{tag}_{key}")
        with self._client() as heat:
            ref = catalog.create(heat, spec)
            return inventory.record(heat, spec.key, ref)

    # a window ------------------------------------------------------------------------------
    def run(self, window: str) -> list[str]:
        """The smoke tests and every stack's operations, side by side; a line per outcome."""
        self.records[window] = []
        stacks = self.stacks.get(window, {})
        with ThreadPoolExecutor(len(stacks) + 2, thread_name_prefix=window) as pool:
            smoke = pool.submit(self._smoke, window)
            jobs = [pool.submit(self._listing, window, list(stacks.values()))]
            jobs += [pool.submit(self._stack, window, key, rec) for key, rec in stacks.items()]
            for job in jobs:
                job.result()
            smoke.result()
        records = self.records[window]
        failed = [r for r in records if not r.ok]
        return [f"{window}: {len(records)} operations on old stacks and by smoke tests, "
                f"{len(records) - len(failed)} ok ({WINDOWS[window]})"]

    def _note(self, response: Any) -> None:
        record: OpRecord | None = getattr(self._current, "record", None)
        rid = response.headers.get(REQUEST_ID)
        if record is not None and rid:
            record.request_ids.append(rid)

    def _operate(self, window: str, op: str, stack: str, heat: HeatClient,
                 call: Callable[[], None]) -> bool:
        record = OpRecord(next(self._seq), op, stack, time.time(), step=window,
                          request_ids=[global_request_id()])
        self.records[window].append(record)
        self._current.record = record
        heat.set_global_request_id(record.request_ids[0])
        try:
            call()
            record.ok = True
        except Exception as exc:  # each failure is a finding, never a crash of the window
            record.error = describe(exc)
        finally:
            record.end, record.end_step = time.time(), window
            self._current.record = None
        return record.ok

    def _heat(self) -> HeatClient:
        heat = self._client()
        heat.on_response = self._note
        return heat

    def _listing(self, window: str, recs: list[Record]) -> None:
        def listed() -> None:
            ids = {stack["id"] for stack in heat.list_stacks()}
            missing = [r["name"] for r in recs if r["id"] not in ids]
            assert not missing, f"old stacks missing from the stack list: {missing}"

        with self._heat() as heat:
            self._operate(window, "list", "(all)", heat, listed)

    def _stack(self, window: str, key: str, rec: Record) -> None:
        with self._heat() as heat:
            for op, call in _chain(key):
                # a failed operation leaves the stack in a state nobody knows: stop there
                if not self._operate(window, op, rec["name"], heat, partial(call, heat, rec)):
                    return

    def _smoke(self, window: str) -> None:
        ctx = self.ctx
        requests = ctx.run_dir / "logs" / f"requests-{window}.jsonl"
        log = ctx.run_dir / "logs" / f"pytest-{window}.log"
        env = {**phase_env(ctx, window), request_log.ENV: str(requests)}
        outcome = run(ExecuteRequest(pytest_command(ctx, window), cwd=ctx.run_dir, env=env,
                                     timeout=PHASE_TIMEOUT, log=log))
        tests = read_junit(junit_path(ctx, window))
        self.tests[window] = tests
        if outcome.returncode not in (0, 5) and not any(t.failed for t in tests):
            self.findings.append(Finding(CHECK, "error", f"the smoke tests did not run in "
                                         f"{window}", where=str(log),
                                         found=f"pytest exited with {outcome.returncode}"))
        by_test: dict[str, list[dict[str, Any]]] = {}
        for line in request_log.read(requests):
            by_test.setdefault(str(line.get("test", "")), []).append(line)
        for test in tests:
            self.records[window].append(self._smoke_record(window, test, by_test))

    def _smoke_record(self, window: str, test: TestOutcome,
                      by_test: dict[str, list[dict[str, Any]]]) -> OpRecord:
        short = test.name.rsplit("::", 1)[-1]
        lines = next((found for name, found in by_test.items()
                      if name.rsplit("::", 1)[-1] == short), [])
        times = [float(line.get("at", 0.0)) for line in lines] or [time.time()]
        return OpRecord(next(self._seq), "smoke", short, min(times), end=max(times),
                        ok=test.status in ("passed", "skipped"), error=test.message,
                        step=window, end_step=window,
                        request_ids=[str(line["request_id"]) for line in lines
                                     if line.get("request_id")])

    def failure_findings(self) -> list[Finding]:
        """An error per failed operation of a window (once the report has added what the
        engines logged about it)."""
        return [self._finding(window, record) for window, records in self.records.items()
                for record in records if not record.ok]

    @staticmethod
    def _finding(window: str, record: OpRecord) -> Finding:
        what = f"smoke test {record.stack}" if record.op == "smoke" else \
            f"{record.op} of old stack {record.stack}"
        return Finding(CHECK, "error", f"{what} failed with {WINDOWS[window]}",
                       where=f"step {window}, operation #{record.seq}",
                       expected="what worked on the base release works while old and new "
                                "releases serve it together",
                       found=record.error or "failed",
                       remedy="see the engines' logs for the request ids in workload.json",
                       kind=window)

    # afterwards ----------------------------------------------------------------------------
    def all_records(self) -> list[OpRecord]:
        return [r for records in self.records.values() for r in records]

    def to_dict(self) -> dict[str, Any]:
        return {window: {"records": [r.to_dict() for r in self.records.get(window, [])],
                         "tests": [t.to_dict() for t in self.tests.get(window, [])]}
                for window in WINDOWS}

    def cleanup(self, heat: HeatClient) -> int:
        """Delete the window stacks (the post-upgrade suite sees its own stacks only)."""
        refs = [inventory.ref_of(rec) for stacks in self.stacks.values()
                for rec in stacks.values()]
        for ref in refs:
            heat.delete_stack(ref)
        for ref in refs:
            heat.wait_for(ref, {"DELETE_COMPLETE"}, catalog.OPERATION_TIMEOUT)
        return len(refs)
