"""The stacks the built-in suite creates before the upgrade, and how each is brought to its state.

Only resource types that need no other OpenStack service. Each operation costs Heat about 1 s
per independent resource per stack level (its convergence workers pause between them), so
templates chain their resources where that costs no coverage, and stacks are created
concurrently.
"""

from __future__ import annotations

import datetime
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grenadier.services.heat_client import HeatClient, StackRef, StackWaitError

TEMPLATES = Path(__file__).with_name("templates")
#: how long one stack operation may take before the suite calls it stuck (seconds; the
#: environment's GRENADIER_OPERATION_SECONDS, e.g. for a slow machine)
OPERATION_TIMEOUT = float(os.environ.get("GRENADIER_OPERATION_SECONDS", "120"))
#: the status a stack has when pre-upgrade is done with it
COMPLETE = "CREATE_COMPLETE"
#: a stack left suspended
SUSPENDED = "SUSPEND_COMPLETE"
#: a stack whose creation is still running when Heat goes down
IN_PROGRESS = "CREATE_IN_PROGRESS"
#: opt-in scale knob: this many extra simple stacks join the pre-upgrade set (default 0)
EXTRA_STACKS_ENV = "GRENADIER_SUITE_EXTRA_STACKS"
#: the key prefix of the extra stacks (``extra_0001``...)
EXTRA_PREFIX = "extra_"


def template(name: str) -> dict[str, Any]:
    """A template of the suite as a dict (for the API's ``template`` field)."""
    data = yaml.safe_load((TEMPLATES / name).read_text(encoding="utf-8"))
    # YAML reads 2018-08-31 as a date; Heat wants the version as it is written
    version = data.get("heat_template_version")
    if isinstance(version, datetime.date):
        data["heat_template_version"] = version.isoformat()
    assert isinstance(data, dict)
    return data


def files_map(*names: str) -> dict[str, str]:
    """The ``files`` map for template resources: name -> template text, as Heat reads it."""
    return {name: (TEMPLATES / name).read_text(encoding="utf-8") for name in names}


@dataclass(frozen=True)
class StackSpec:
    """One stack of the pre-upgrade set."""

    key: str
    template: str
    covers: str
    files: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: the status the stack is left in at the end of pre-upgrade: COMPLETE, SUSPENDED or
    #: IN_PROGRESS (see :func:`create`)
    settled: str = COMPLETE
    #: IN_PROGRESS: the resource whose creation must have started (it takes long enough)
    started: str = ""
    #: a WaitConditionHandle the stack waits for: signalled (PRE_SIGNAL) once it exists
    signal: str = ""

    def __post_init__(self) -> None:
        if self.settled not in (COMPLETE, SUSPENDED, IN_PROGRESS):
            raise ValueError(f"stack {self.key}: cannot be left {self.settled}")
        if (self.settled == IN_PROGRESS) != bool(self.started):
            raise ValueError(f"stack {self.key}: `started` names the resource whose start "
                             f"settles a stack left {IN_PROGRESS}, and only such a stack")

    def stack_name(self) -> str:
        return unique_name(self.key)


def unique_name(key: str) -> str:
    """A stack name unique per creation: a repeated phase against the same Heat never collides."""
    return f"grenadier-{key.replace('_', '-')}-{uuid.uuid4().hex[:6]}"


SPECS: tuple[StackSpec, ...] = (
    StackSpec("params", "params.yaml", "parameters of every type and outputs",
              parameters={"greeting": "hello", "tags": "a,b", "size": 8}),
    StackSpec("group", "group.yaml", "a ResourceGroup"),
    StackSpec("nested", "nested.yaml", "a nested stack through a template resource",
              files=("inner.yaml",)),
    StackSpec("software_config", "software_config.yaml", "a SoftwareConfig"),
    StackSpec("wait_condition", "wait_condition.yaml", "a WaitCondition signalled through the API",
              signal="handle"),
    StackSpec("retain", "retain.yaml", "deletion_policy: Retain", files=("inner.yaml",)),
    StackSpec("suspended", "suspended.yaml", "a stack left suspended", files=("inner.yaml",),
              settled=SUSPENDED),
    StackSpec("in_progress", "in_progress.yaml", "a stack left IN_PROGRESS at shutdown",
              settled=IN_PROGRESS, started="slow"),
    StackSpec("evolve", "evolve.yaml", "a stack whose template changes after the upgrade"),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


def extra_stacks(environ: Mapping[str, str] | None = None) -> int:
    """How many extra stacks GRENADIER_SUITE_EXTRA_STACKS asks for (0 when unset or empty)."""
    raw = (os.environ if environ is None else environ).get(EXTRA_STACKS_ENV, "").strip()
    if not raw:
        return 0
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(f"{EXTRA_STACKS_ENV}={raw!r}: expected a whole number >= 0")
    return count


def extra_specs(count: int) -> tuple[StackSpec, ...]:
    """``count`` extra simple stacks (a RandomString and a Value: one leaf, about 0.25 s per
    operation), for measuring how the phases grow with the number of stacks."""
    width = max(4, len(str(count)))
    return tuple(
        StackSpec(f"{EXTRA_PREFIX}{index:0{width}d}", "inner.yaml", "an extra simple stack (scale)",
                  parameters={"word": f"extra{index}"})
        for index in range(1, count + 1))


def all_specs(extra: int = 0) -> tuple[StackSpec, ...]:
    """The built-in pre-upgrade set, followed by ``extra`` extra simple stacks."""
    return SPECS + extra_specs(extra)


PRE_SIGNAL = {"status": "SUCCESS", "reason": "signalled before the upgrade", "data": "pre",
              "id": "pre"}


def wait_resource(heat: HeatClient, ref: StackRef, resource: str, statuses: set[str],
                  timeout: float = OPERATION_TIMEOUT) -> dict[str, Any]:
    """Poll one resource of ``ref`` until it has one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        found = heat.get_resource(ref, resource)
        if found.get("resource_status") in statuses:
            return found
        if str(found.get("resource_status", "")).endswith("_FAILED") or \
                time.monotonic() >= deadline:
            raise StackWaitError(
                f"resource {resource} of stack {ref}: wanted {' or '.join(sorted(statuses))}, "
                f"found {found.get('resource_status')}: {found.get('resource_status_reason')}\n"
                + "\n".join(f"  {line}" for line in heat.recent_events(ref)))
        time.sleep(0.5)


def create(heat: HeatClient, spec: StackSpec) -> StackRef:
    """Create the stack of ``spec`` and bring it to ``spec.settled``."""
    ref = heat.create_stack(spec.stack_name(), template(spec.template), spec.parameters,
                            files_map(*spec.files))
    if spec.settled == IN_PROGRESS:
        # Not waited for: it must still be running when Heat goes down. Its resource having
        # started is what makes the state deterministic.
        wait_resource(heat, ref, spec.started, {IN_PROGRESS})
        return ref
    if spec.signal:
        wait_resource(heat, ref, spec.signal, {COMPLETE})
        heat.signal_resource(ref, spec.signal, PRE_SIGNAL)
    heat.wait_for(ref, {COMPLETE}, OPERATION_TIMEOUT)
    if spec.settled == SUSPENDED:
        heat.suspend(ref)
        heat.wait_for(ref, {SUSPENDED}, OPERATION_TIMEOUT)
    return ref
