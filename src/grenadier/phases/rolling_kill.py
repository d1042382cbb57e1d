"""The rolling step's TEST HOOK: a base engine killed without draining, and what it did.

``GRENADIER_TEST_KILL_BASE_ENGINE=<i>`` (not a user option) makes the ``stop-base-engine-<i>``
step SIGKILL base engine <i> instead of stopping it gracefully, once the engine is working on a
workload operation: an end-to-end test can then check that what the kill does to the workload
is reported at that step (tests/e2e/test_rolling.py). The kill is the supervisor's own crash
stop, recorded on the timeline like any other.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from grenadier.errors import UsageError
from grenadier.workload.generator import OpRecord
from grenadier.workload.report import WorkloadReport

KILL_ENV = "GRENADIER_TEST_KILL_BASE_ENGINE"
#: how long the hook waits for the engine to be working on a workload operation
BUSY_TIMEOUT = 60.0
#: Heat's request ids, as its services log them
REQ = re.compile(rb"req-[0-9a-f-]{36}")
#: what an engine logs each time it sends one of a traversal's independent resources to the
#: workers; it then sleeps 1 s before the next one: killed then, the engine
#: takes the rest of that operation with it
TRIGGERING = b"Triggering resource "
#: how recent (s) an operation's first "Triggering resource" line must be for the kill: well
#: inside the 1 s the engine sleeps before it sends the next leaf
FRESH = 0.5


def engine_to_kill(engines: int, environ: Mapping[str, str] | None = None) -> int | None:
    """The base engine (1..``engines``) the test hook KILL_ENV asks to SIGKILL, or None."""
    raw = (os.environ if environ is None else environ).get(KILL_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= engines:
        raise UsageError(f"{KILL_ENV}={raw!r}: give a base engine number, 1 to {engines}")
    return int(raw)


@dataclass(frozen=True)
class Kill:
    """The base engine the test hook killed: which, at which step, when (epoch seconds), and
    the workload operation it was seen working on (None: none within BUSY_TIMEOUT)."""

    service: str
    step: str
    at: float
    busy_with: int | None = None
    waited: float = 0.0


def wait_until_busy(records: Callable[[], list[OpRecord]], log: Path,
                    timeout: float = BUSY_TIMEOUT) -> OpRecord | None:
    """The first workload operation in flight whose traversal the engine has just begun to send
    to the workers: it logged the operation's FIRST "Triggering resource" line less than
    FRESH s ago, and no second one yet; waiting up to ``timeout`` s; None when none was seen.

    Every workload stack has two independent resources (generator.TEMPLATE), so each create,
    update or delete traversal has two leaves, sent one second apart: killed
    in that second, the engine never sends the second leaf, and the traversal cannot end.

    Measured, why: a kill at a random moment found the engine idle (0 operations in flight at
    one kill out of two); a kill as soon as the engine logged "Updating stack" hit it while it
    validated the stack, and the update went on elsewhere; a kill after ANY "Triggering
    resource" line (an earlier hook) once came after the last leaf, and the update went on on
    the workers (CI, 78 operations, 0 failed)."""
    deadline = time.monotonic() + timeout
    triggers: dict[bytes, list[float]] = {}  # request id -> when each of its lines was read
    offset, history = 0, True  # the whole log: lines before the wait count, but are not fresh
    while True:
        now = time.monotonic()
        offset += _read_triggers(log, offset, triggers, float("-inf") if history else now)
        history = False
        for record in records():
            if not record.end and any(_first_and_fresh(triggers.get(rid.encode()), now)
                                      for rid in record.request_ids):
                return record
        if now >= deadline:
            return None
        time.sleep(0.02)


def _read_triggers(log: Path, offset: int, triggers: dict[bytes, list[float]],
                   stamp: float) -> int:
    """Record the "Triggering resource" lines logged past ``offset`` under their request ids;
    the bytes read (a line still being written is left for the next read)."""
    with contextlib.suppress(OSError), log.open("rb") as stream:
        stream.seek(offset)
        chunk = stream.read()
        whole = chunk.rfind(b"\n") + 1
        for line in chunk[:whole].splitlines():
            if TRIGGERING in line:
                for rid in set(REQ.findall(line)):
                    triggers.setdefault(rid, []).append(stamp)
        return whole
    return 0


def _first_and_fresh(stamps: list[float] | None, now: float) -> bool:
    return stamps is not None and len(stamps) == 1 and now - stamps[0] < FRESH


def in_flight_at(kill: Kill, records: list[OpRecord]) -> list[OpRecord]:
    """The workload operations in flight when ``kill`` happened."""
    return [r for r in records if r.start <= kill.at <= (r.end or kill.at)]


def blame(kill: Kill, flying: list[OpRecord], report: WorkloadReport) -> list[str]:
    """Mark the failures and stuck stacks of operations in flight at the kill with it (the
    step it happened in); one line per such operation."""
    fault = f"in flight when {kill.service} was killed at step {kill.step}"
    seqs = {r.seq for r in flying}
    for failure in report.failures:
        if failure["seq"] in seqs:
            failure["fault"] = fault
    stacks = {r.stack for r in flying}
    for stack in report.in_progress:
        if stack["name"] in stacks:
            stack["fault"] = fault
    lines = []
    for record in flying:
        on = " (logged by the killed engine)" if kill.service in record.engines else ""
        outcome = "ok" if record.ok else f"FAILED: {record.error.splitlines()[0]}"
        lines.append(f"in flight at the kill: #{record.seq} {record.op} {record.stack}{on}, "
                     f"started in {record.step}, ended in {record.end_step}: {outcome}")
    return lines
