"""A bounded workload of Heat stack operations, run in threads while an upgrade proceeds.

Each operation is one API call and, for the asynchronous ones (create, update, delete), the
wait until its stack settles: an operation succeeds only when Heat finished it. Every
operation is recorded with the step label that was current when it started (and when it
ended), so that a failure is attributed to the upgrade step it happened in.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from grenadier.errors import UsageError, describe
from grenadier.services.heat_client import ANSWER_LOST, HeatClient, HeatError, StackRef

OPERATIONS = ("create", "show", "update", "signal", "delete")
#: operations that last (Heat works on the stack, the workload waits for it to settle): the
#: ones that keep the floor of operations in flight
LASTING = frozenset({"create", "update", "delete"})
DEFAULT_MIX: dict[str, int] = {"create": 2, "show": 3, "update": 2, "signal": 2, "delete": 1}
#: the stack every create makes: a WaitConditionHandle (signal target) and a RandomString
#: whose salt an update changes (so that an update replaces a resource)
TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2016-10-14",
    "parameters": {"salt": {"type": "string", "default": "0"}},
    "resources": {
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "word": {"type": "OS::Heat::RandomString",
                 "properties": {"length": 8, "salt": {"get_param": "salt"}}},
    },
    "outputs": {"word": {"value": {"get_attr": ["word", "value"]}}},
}
REQUEST_ID = "x-openstack-request-id"
#: how often a change whose answer was lost is sent again
RESENDS = 3
#: what Heat answers a change sent again when the first one did reach it: a create whose
#: stack exists (409), a delete of a stack gone (404) or being deleted (400 with trusts, 409)
_ALREADY_DONE = frozenset({400, 404, 409})


def global_request_id() -> str:
    """A global request id for one operation: every request it sends carries it, and Heat's
    API and engines log it (so is it found even for a request never answered)."""
    return f"req-{uuid.uuid4()}"


def parse_mix(text: str) -> dict[str, int]:
    """``create=2,show=3`` -> weights; unknown operations or bad weights: UsageError."""
    mix: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        if name not in OPERATIONS or not weight.isdigit():
            raise UsageError(f"--workload-mix {text!r}: give op=weight pairs, ops "
                             f"{', '.join(OPERATIONS)}")
        mix[name] = int(weight)
    if not mix.get("create"):
        raise UsageError(f"--workload-mix {text!r}: needs create with a weight above 0")
    return mix


@dataclass
class OpRecord:
    """One workload operation as it happened."""

    seq: int
    op: str
    stack: str
    start: float
    end: float = 0.0
    ok: bool = False
    error: str = ""
    #: the upgrade step current when the operation started / ended
    step: str = ""
    end_step: str = ""
    #: the global request id every request of the operation carried, then Heat's own
    #: request ids of every answer it got (engine logs carry them)
    request_ids: list[str] = field(default_factory=list)
    #: engine services whose logs mention the request (filled in after the run)
    engines: list[str] = field(default_factory=list)
    #: times a change was sent again because its answer was lost
    resent: int = 0
    #: why it waited for an answer that never came (a message an engine dropped as it
    #: stopped), when it did (filled in after the run)
    lost: str = ""

    @property
    def latency(self) -> float:
        return max(0.0, self.end - self.start)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "latency": round(self.latency, 4)}


@dataclass
class WorkloadLimits:
    """Bounds of a workload: operations started at most, seconds at most, rate, concurrency."""

    max_ops: int = 2000
    max_seconds: float = 600.0
    #: operations started per second (at most)
    rate: float = 2.0
    #: operations in flight at most: enough that some start while others hang
    workers: int = 6
    #: operations kept in flight at all times: when fewer are, one starts at once (a lasting
    #: one), whatever the rate
    min_in_flight: int = 4
    #: operations a step of the upgrade is held open for, every kind of the mix among them:
    #: 20, so that one slow operation is not a step's p95 on its own
    step_min_ops: int = 20
    #: workload stacks alive at once at most (then creates become updates)
    max_stacks: int = 8
    #: how long one asynchronous operation may take to settle
    op_timeout: float = 180.0


ClientFactory = Callable[[], HeatClient]


class Workload:
    """Starts operations at ``limits.rate`` in a thread pool until stopped or a bound is hit."""

    def __init__(self, client_factory: ClientFactory, limits: WorkloadLimits | None = None,
                 mix: Mapping[str, int] | None = None, *, seed: int = 7,
                 prefix: str = "wl") -> None:
        self.limits = limits or WorkloadLimits()
        self.mix = dict(mix or DEFAULT_MIX)
        self.prefix = prefix
        self._factory = client_factory
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._step = "before"
        self._seq = 0
        self._submitted = 0
        self._in_flight = 0
        #: an operation ended: the loop may start the next one at once
        self._wake = threading.Event()
        #: operations started in the current step, and the kinds of the mix not started yet
        self._step_ops = 0
        self._missing: set[str] = set()
        #: (step, epoch seconds it began), in order; and when the workload stopped
        self.marks: list[tuple[str, float]] = []
        self.stopped_at = 0.0
        self.records: list[OpRecord] = []
        #: idle stacks (no operation running on them), and busy ones
        self._idle: list[StackRef] = []
        self._busy: set[str] = set()
        self._local = threading.local()
        self._clients: list[HeatClient] = []
        self._thread: threading.Thread | None = None
        self._futures: list[Future[None]] = []

    # step labels ------------------------------------------------------------------------
    def set_step(self, label: str) -> None:
        with self._lock:
            self._step = label
            self._step_ops = 0
            self._missing = {op for op, weight in self.mix.items() if weight > 0}
            self.marks.append((label, time.time()))

    def step_filled(self) -> bool:
        """The current step has its operations: ``step_min_ops``, every kind among them."""
        with self._lock:
            return self._step_ops >= self.limits.step_min_ops and not self._missing

    def drain(self, step: str, timeout: float) -> bool:
        """Wait until every operation started in ``step`` has ended (or ``timeout`` s);
        whether they all have."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(r.step == step and not r.end for r in self.records)
            if not busy or time.monotonic() >= deadline:
                return not busy
            time.sleep(0.1)

    def fill_step(self, timeout: float) -> bool:
        """Hold the current step until :meth:`step_filled` (or ``timeout`` s, or the workload
        ended); whether it is filled."""
        deadline = time.monotonic() + timeout
        while not self.step_filled():
            if self.done or time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.set_step(self._step)
        self._thread = threading.Thread(target=self._loop, name="workload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> list[OpRecord]:
        """Start no more operations; wait for those in flight; return every record."""
        self._stop.set()
        self._wake.set()
        self.stopped_at = time.time()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + (timeout or self.limits.op_timeout + 30)
        for future in list(self._futures):
            future.exception(timeout=max(0.1, deadline - time.monotonic()))
        for client in self._clients:
            client.close()
        with self._lock:
            return sorted(self.records, key=lambda r: r.seq)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _loop(self) -> None:
        """Start an operation at once while fewer than ``min_in_flight`` are in flight, and
        one every 1/``rate`` s up to ``workers`` in flight."""
        interval = 1.0 / self.limits.rate if self.limits.rate > 0 else 0.0
        deadline = time.monotonic() + self.limits.max_seconds
        floor = min(self.limits.min_in_flight, self.limits.workers)
        paced = time.monotonic()
        with ThreadPoolExecutor(self.limits.workers, thread_name_prefix="workload") as pool:
            while not self._stop.is_set() and time.monotonic() < deadline \
                    and self._submitted < self.limits.max_ops:
                now = time.monotonic()
                with self._lock:
                    in_flight = self._in_flight
                    due = now >= paced and in_flight < self.limits.workers
                    if due or in_flight < floor:
                        self._in_flight += 1
                if due or in_flight < floor:
                    self._submitted += 1
                    self._futures.append(pool.submit(self._one, not due))
                    paced = now + interval if due else paced
                    continue
                self._wake.wait(max(0.001, min(paced - now, 0.5)))
                self._wake.clear()
            # the pool's exit waits for operations in flight

    # operations -------------------------------------------------------------------------
    def _client(self) -> HeatClient:
        client: HeatClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            client.on_response = self._note  # every answer, polls and errors too
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _note(self, response: httpx.Response) -> None:
        """Keep Heat's request id of an answer to the operation this thread runs."""
        record: OpRecord | None = getattr(self._local, "record", None)
        rid = response.headers.get(REQUEST_ID)
        if record is not None and rid:
            record.request_ids.append(rid)

    def _kind(self, lasting: bool) -> str:
        """The next operation's kind: one of the mix this step has not started yet, else by
        weight; ``lasting``: among create, update and delete (the floor's operations)."""
        kinds = [op for op, weight in self.mix.items() if weight > 0]
        if lasting and LASTING & set(kinds):
            kinds = [op for op in kinds if op in LASTING]
        missing = [op for op in kinds if op in self._missing]
        if missing:
            return self._random.choice(missing)
        return self._random.choices(kinds, [self.mix[op] for op in kinds])[0]

    def _choose(self, lasting: bool = False) -> tuple[OpRecord, StackRef | None]:
        with self._lock:
            self._seq += 1
            seq = self._seq
            op = self._kind(lasting)
            live = len(self._idle) + len(self._busy)
            # enough stacks: a create becomes a delete (or an update), unless the step has
            # had no create yet
            if op == "create" and live >= self.limits.max_stacks and self._idle \
                    and op not in self._missing:
                op = next((o for o in ("delete", "update", "show") if self.mix.get(o)), op)
            ref: StackRef | None = None
            if op != "create":
                if not self._idle:
                    op = "create"
                else:
                    ref = self._idle.pop(self._random.randrange(len(self._idle)))
                    self._busy.add(ref.id)
            name = ref.name if ref else f"{self.prefix}-{seq:04d}"
            record = OpRecord(seq, op, name, time.time(), step=self._step,
                              request_ids=[global_request_id()])
            self.records.append(record)
            self._step_ops += 1
            self._missing.discard(op)
        return record, ref

    def _one(self, lasting: bool = False) -> None:
        record, ref = self._choose(lasting)
        self._local.record = record
        keep: StackRef | None = ref
        try:
            client = self._client()
            client.set_global_request_id(record.request_ids[0])
            keep = self._run(client, record, ref)
            record.ok = True
        except Exception as exc:  # every failure is a result, never a crash of the workload
            record.error = describe(exc)
        finally:
            with self._lock:
                record.end, record.end_step = time.time(), self._step
                if ref is not None:
                    self._busy.discard(ref.id)
                # a stack whose operation failed is in a state nobody knows: never used again,
                # so that a later update cannot finish (or blur) what the failure left behind
                if keep is not None and record.ok and record.op != "delete":
                    self._idle.append(keep)
                self._in_flight -= 1
            self._local.record = None
            self._wake.set()

    def _change(self, client: HeatClient, record: OpRecord, method: str, path: str,
                **kwargs: Any) -> httpx.Response | None:
        """Send a request that changes a stack, again when its answer was lost, as a client
        behind a load balancer would. None: a request sent again found the first one had
        reached Heat (see ``_ALREADY_DONE``); the operation's wait for its stack decides."""
        while True:
            try:
                return client.request(method, path, **kwargs)
            except ANSWER_LOST:
                if record.resent >= RESENDS:
                    raise
                record.resent += 1
            except HeatError as exc:
                if not record.resent or exc.status not in _ALREADY_DONE:
                    raise
                return None

    def _create(self, client: HeatClient, record: OpRecord) -> StackRef:
        body = {"stack_name": record.stack, "template": TEMPLATE,
                "parameters": {"salt": "0"}, "disable_rollback": True}
        response = self._change(client, record, "POST", "stacks", json=body)
        if response is not None:
            ref = StackRef(record.stack, response.json()["stack"]["id"])
        else:  # the POST whose answer was lost did create it
            found = client.find_stack(record.stack)
            if found is None:
                raise AssertionError(f"stack {record.stack} was neither created nor found")
            ref = found
        client.wait_for(ref, {"CREATE_COMPLETE"}, self.limits.op_timeout)
        return ref

    def _run(self, client: HeatClient, record: OpRecord, ref: StackRef | None) -> StackRef | None:
        timeout = self.limits.op_timeout
        if record.op == "create":
            return self._create(client, record)
        assert ref is not None
        if record.op == "show":
            stack = client.request("GET", ref.path,
                               params={"resolve_outputs": "false"}).json()["stack"]
            if str(stack.get("stack_status", "")).endswith("FAILED"):
                raise AssertionError(f"stack {ref} is {stack['stack_status']}: "
                                     f"{stack.get('stack_status_reason')}")
        elif record.op == "update":
            before = client.get_stack(ref)
            self._change(client, record, "PATCH", ref.path,
                         json={"parameters": {"salt": str(record.seq)}})
            client.wait_for(ref, {"UPDATE_COMPLETE"}, timeout, before=before)
        elif record.op == "signal":
            self._change(client, record, "POST", f"{ref.path}/resources/handle/signal",
                         json={"status": "SUCCESS", "reason": "workload",
                               "data": str(record.seq), "id": str(record.seq)})
        elif record.op == "delete":
            self._change(client, record, "DELETE", ref.path)
            client.wait_for(ref, {"DELETE_COMPLETE"}, timeout)
        return ref
