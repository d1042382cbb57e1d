"""How the database checks start release processes: ``probe.py`` with a release's python.

Kept apart from the checks themselves so that the fresh-database preparation (``fresh.py``) and
the checks (``checks.py``) share one way of running and failing a probe.
"""

from __future__ import annotations

import json
from pathlib import Path

from grenadier.checks.api import CheckContext
from grenadier.checks.db.compare import Json
from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.releases import Release

PROBE = Path(__file__).with_name("probe.py")
#: seconds for one probe call; ``rows`` of a 1,000-stack database takes a few
PROBE_TIMEOUT = 600.0
DB_SYNC_TIMEOUT = 900.0
#: Release venvs are grenadier's own cache: let Python write their bytecode even where the
#: environment forbids it, or every probe and heat-manage call recompiles SQLAlchemy and Heat
#: (0.5-2 s per call, measured with PYTHONDONTWRITEBYTECODE=1)
COMPILE_OK = ("PYTHONDONTWRITEBYTECODE",)


class ProbeFailed(EnvironmentProblem):
    """probe.py could not look at the database."""


def work_dir(ctx: CheckContext) -> Path:
    path = ctx.run_dir / "checks" / "db"
    path.mkdir(parents=True, exist_ok=True)
    return path


def probe(ctx: CheckContext, release: Release, commands: str, url: str = "",
          *args: str, timeout: float = PROBE_TIMEOUT) -> Json:
    """Run probe.py with ``release``'s python; the URL travels in the environment."""
    cmd = [str(release.python), str(PROBE), commands, "-", *args]
    request = ExecuteRequest(cmd, env={"GRENADIER_PROBE_URL": url}, timeout=timeout,
                             log=ctx.deployment.logs / "db-probe.log", unset_env=COMPILE_OK)
    outcome = run(request)
    try:
        data: Json = json.loads(outcome.out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        data = {"error": outcome.last_error_line()}
    if not outcome.ok or "error" in data:
        reason = "timed out" if outcome.timed_out else data.get("error", "failed")
        raise ProbeFailed(f"probe {commands} with {release.label}: {reason}",
                          hint=f"log: {request.log}")
    return data


#: what each database check reads with probe.py: before the migration (with the base
#: release's python) and after it (the target's)
NEEDS = {
    "before": {"migration": ("current",),
               "data-preserved": ("current", "schema", "capture-digests")},
    "after": {"migration": ("current", "heads"), "schema-drift": ("compare-models", "schema"),
              "data-preserved": ("heads", "schema", "compare-digests")},
}


BEFORE_FILE, AFTER_FILE = "digests-before.json", "digests-after.json"


def _commands(ctx: CheckContext, stage: str, checks: tuple[str, ...]) -> list[str]:
    needs = NEEDS[stage]
    if stage == "after" and not (work_dir(ctx) / BEFORE_FILE).is_file():
        checks = tuple(c for c in checks if c != "data-preserved")  # it warns, probes nothing
    return list(dict.fromkeys(c for name in checks if name in needs for c in needs[name]))


def _args(ctx: CheckContext, commands: list[str]) -> list[str]:
    """probe.py's files: the capture's output, and what the comparison reads and writes."""
    if "capture-digests" in commands:
        return ["--out", str(work_dir(ctx) / BEFORE_FILE)]
    if "compare-digests" in commands:
        return ["--before", str(work_dir(ctx) / BEFORE_FILE),
                "--out", str(work_dir(ctx) / AFTER_FILE)]
    return []


def shared_probe(ctx: CheckContext, stage: str, check: str) -> Json:
    """What ``check`` reads with probe.py at ``stage``, read once for every selected check.

    The first check to ask runs one probe for all of them (one Python importing SQLAlchemy
    instead of one per check); the others wait for it and take their part. When that probe
    fails, or the selection is unknown, each check probes for itself alone, so that one
    check's trouble never becomes another's. Keyed by command, as probe.py prints several.
    """
    own = list(NEEDS[stage][check])
    if check in ctx.selected:
        together = _commands(ctx, stage, ctx.selected)
        with ctx.lock:
            done = ctx.shared.get(f"probe-{stage}")
            if done is None:
                try:
                    done = _run(ctx, stage, together)
                except ProbeFailed as exc:
                    done = exc
                ctx.shared[f"probe-{stage}"] = done
        if isinstance(done, dict):
            return done
    return _run(ctx, stage, own)


def _run(ctx: CheckContext, stage: str, commands: list[str]) -> Json:
    release = ctx.base if stage == "before" else ctx.target
    args = _args(ctx, commands)
    if "capture-digests" in commands:  # a failed capture must not leave an earlier one
        (work_dir(ctx) / BEFORE_FILE).unlink(missing_ok=True)
    data = probe(ctx, release, ",".join(commands), ctx.deployment.db.url(), *args)
    if "--out" in args:
        data = json.loads(Path(args[args.index("--out") + 1]).read_text(encoding="utf-8"))
    return data if len(commands) > 1 else {commands[0]: data}
