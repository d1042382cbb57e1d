"""The tools venv of the upstream tests: heat-tempest-plugin and gabbi, pinned and constrained."""

from __future__ import annotations

from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.releases import ReleaseCache
from grenadier.releases.tools import Tool, ensure_tool

#: the plugin whose gabbits run; tempest plugins are not branched, one release serves all.
#: Its venv is resolved with the upper-constraints of the series it was released in (the
#: release cache's series data): an unconstrained resolve of its dependencies (tempest,
#: oslo.*) picks library pairs that do not import together
PLUGIN_REQUIREMENT = "heat-tempest-plugin==3.0.0"
#: gabbi as those constraints pin it (the runner uses its 4.x suite builder)
GABBI_REQUIREMENT = "gabbi==4.2.0"
#: the tools venv's Python, as the runner hands it to the test phases
PYTHON_ENV = "GRENADIER_UPSTREAM_PYTHON"
RUNNER = Path(__file__).with_name("gabbi_runner.py")
GABBITS = "heat_tempest_plugin/tests/api/gabbits"


def ensure_tools(cache: ReleaseCache, log: Path | None = None) -> Tool:
    """heat-tempest-plugin and gabbi in ``<cache>/tools``, installed once per version."""
    return ensure_tool(cache, PLUGIN_REQUIREMENT, extra=[GABBI_REQUIREMENT], log=log)


def gabbits_dir(python: Path) -> Path:
    """The plugin's gabbi files inside the tools venv of ``python`` (read, never imported)."""
    venv = python.parent.parent
    found = sorted(venv.glob(f"lib/python3*/site-packages/{GABBITS}"))
    if not found:
        raise EnvironmentProblem(f"no {GABBITS} in the tools venv {venv}",
                                 hint="remove the venv from the cache to reinstall it")
    return found[0]
