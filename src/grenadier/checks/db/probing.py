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
