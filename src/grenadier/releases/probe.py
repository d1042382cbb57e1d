"""A new venv is proven usable before the cache keeps it: its own Python imports the entry
points of what it was built for (``venv_probe.py``, run in that venv). A venv whose libraries do
not fit together is the machine's or the index's problem, never the upgrade's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run

SCRIPT = Path(__file__).with_name("venv_probe.py")
PROBE_TIMEOUT = 300.0

#: modules a distribution's scripts import only once they run, by distribution: Heat's
#: engine pulls in its template functions (and yaql, which needs pkg_resources in 2025.1);
#: heat-tempest-plugin has no scripts, its gabbits are run by gabbi's suite builder
DEEPER = {"openstack-heat": ("heat.engine.service",),
          "heat-tempest-plugin": ("gabbi.suitemaker", "heat_tempest_plugin.config")}

#: (venv, distribution, what it is for people, log) -> None, or EnvironmentProblem
Probe = Callable[[Path, str, str, "Path | None"], None]


def probe_venv(venv: Path, dist: str, what: str, log: Path | None) -> None:
    """Import ``dist``'s console and WSGI script modules with the venv's Python."""
    request = ExecuteRequest([str(venv / "bin" / "python"), str(SCRIPT), dist,
                              *DEEPER.get(dist, ())], timeout=PROBE_TIMEOUT, log=log)
    outcome = run(request)
    try:
        result = json.loads(outcome.out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        outcome.assert_success(f"proving {what} usable")
        raise EnvironmentProblem(f"proving {what} usable: the probe printed nothing") from None
    if not result.get("ok"):
        raise EnvironmentProblem(unusable_line(what, result),
                                 hint="try another --constraints, or see the install log")


def unusable_line(what: str, result: dict[str, object]) -> str:
    """``openstack-heat 26.0.2 does not work in its venv: importing heat.cmd.manage: ...;
    involved: pyOpenSSL 22.0.0 with cryptography 51.0.1``."""
    line = (f"{what} does not work in its venv: importing {result.get('module')} failed with "
            f"{result.get('error')}")
    involved = [str(x) for x in result.get("involved") or [] if x]  # type: ignore[attr-defined]
    if involved:
        line += f"; involved: {' with '.join(involved)}"
    return line
