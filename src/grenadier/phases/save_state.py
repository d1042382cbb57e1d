"""save-state: a DB snapshot and the inventory of stacks and resources, before the upgrade."""

from __future__ import annotations

from grenadier.errors import EnvironmentProblem
from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.state import RUNNER

SNAPSHOT_TIMEOUT = 300.0


def save_state(ctx: RunContext) -> StepResult:
    """Snapshot the database (for restore after a failed migration) and record the inventory."""
    result = StepResult("save-state", Status.PASSED)
    try:
        snapshot = ctx.db.snapshot(ctx.run_dir / "snapshot", SNAPSHOT_TIMEOUT)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the database snapshot: {exc.strerror}") from exc
    ctx.store.save(RUNNER, "snapshot", str(snapshot))
    ctx.store.save(RUNNER, "restore-command", ctx.db.restore_command(snapshot))
    result.messages.append(f"snapshot {snapshot} ({snapshot.stat().st_size // 1024} KiB)")
    inventory = ctx.project.inventory(ctx.deployment)
    broken = [stack for stack in inventory.get("stacks", []) if stack.get("error")]
    if broken:  # nothing is upgraded yet: the base's own API fails
        raise EnvironmentProblem(f"the base release's API fails on stack {broken[0].get('name')}"
                                 f": {broken[0]['error']}",
                                 hint=f"{len(broken)} stack(s) cannot be listed")
    ctx.store.save(RUNNER, "inventory-before", inventory)
    stacks = inventory.get("stacks", [])
    resources = sum(len(s.get("resources", [])) for s in stacks)
    result.messages.append(f"inventory: {len(stacks)} stacks, {resources} resources")
    return result
