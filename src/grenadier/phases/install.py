"""install: base and target releases into their cached venvs, in parallel."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from grenadier.model.result import Status, StepResult
from grenadier.phases.context import RunContext
from grenadier.releases.constraints import described


def install(ctx: RunContext) -> StepResult:
    """Resolve both specs and install each release (once per cache); record pip freeze.

    Each venv is built with the upper-constraints of its release's series (or as the run's
    ``--constraints`` says) and proven to import before it is used: a release that does not
    work in its venv fails here, as the machine's problem (exit 3), never the upgrade's.

    With ``--auth keystone`` Keystone installs here too, beside the releases: a broken install
    is an install failure, and setup-base only bootstraps it.
    """
    result = StepResult("install", Status.PASSED)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {role: pool.submit(ctx.release, role) for role in ("base", "target")}
        keystone = pool.submit(ctx.keystone.install) if ctx.keystone is not None else None
        tools = pool.submit(ctx.test_tools)
        releases = {role: future.result() for role, future in futures.items()}
        if keystone is not None:
            result.messages.append(f"keystone: {keystone.result().label}")
        result.messages += [f"test tools: {name}={value}" for name, value in tools.result().items()]
    freeze_dir = ctx.run_dir / "releases"
    freeze_dir.mkdir(parents=True, exist_ok=True)
    for role, release in releases.items():
        started = time.monotonic()
        (freeze_dir / f"{role}-freeze.txt").write_text(ctx.cache.freeze(release), encoding="utf-8")
        environment = described(release.environment)
        result.messages.append(f"{role}: {release.label} in {release.venv}, built with "
                               f"{environment} (freeze {time.monotonic() - started:.1f} s)")
        ctx.say(f"{role} {release.label}: {environment}")
    ctx.write_endpoint()
    ctx.start_impact()
    return result
