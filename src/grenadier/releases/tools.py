"""Helper tools (not the project under test) installed into their own cached venvs.

Keystone is the first: a run with ``--auth keystone`` needs it, but it is another service, never
upgraded by the run. The same cache, installer and environments as the releases are used (the
upper-constraints of the tool's own series, else the index as of its upload; never the run's
``--constraints``, which is about the releases under test), so a tool is installed once per
version, environment and Python, proven to import, and reused by every later run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grenadier.errors import UsageError
from grenadier.releases.cache import ReleaseCache
from grenadier.releases.constraints import AUTO, Environment
from grenadier.releases.release import CachedVenv

_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][0-9A-Za-z.+!-]*)$")


@dataclass(frozen=True)
class Tool(CachedVenv):
    """An installed tool: its venv and the version pinned by the requirement."""

    label: str
    version: str
    venv: Path
    name: str


def parse_pinned(requirement: str) -> tuple[str, str]:
    """``keystone==30.0.0`` -> ("keystone", "30.0.0"): a tool is pinned, for repeatability."""
    match = _PINNED.match(requirement.strip())
    if match is None:
        raise UsageError(f"tool requirement {requirement!r} must pin one version (name==X.Y.Z)")
    return match.group("name").lower().replace("_", "-"), match.group("version")


def ensure_tool(cache: ReleaseCache, requirement: str, extra: Sequence[str] = (),
                log: Path | None = None) -> Tool:
    """Install ``requirement`` (plus ``extra`` packages) into ``<cache>/tools``, once."""
    name, version = parse_pinned(requirement)
    packages = [requirement, *extra]

    def install(environment: Environment) -> dict[str, str]:
        venv = cache.root / "tools" / f"{name}-{version}-{cache.py_tag}-{environment.tag}"
        wanted = {"kind": "tool", "source": " ".join(packages), "version": version,
                  "environment": environment.digest}
        return {"venv": str(venv), **cache.ensure_venv(
            venv, wanted, packages, log, environment=environment,
            probe=lambda v: cache.probe(v, name, requirement, log))}

    planned = cache.environment_for(name, version, AUTO, log)
    marker = cache.install_with_fallback(name, version, planned, install, log)
    return Tool(f"{name}=={version}", version, Path(marker["venv"]), name)
