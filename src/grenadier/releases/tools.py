"""Helper tools (not the project under test) installed into their own cached venvs.

Keystone is the first: a run with ``--auth keystone`` needs it, but it is another service, never
upgraded by the run. The same cache and installer as the releases are used, so a tool is
installed once per version and Python, and reused by every later run.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.host import file_lock
from grenadier.releases.cache import MARKER, ReleaseCache

_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][0-9A-Za-z.+!-]*)$")


@dataclass(frozen=True)
class Tool:
    """An installed tool: its venv and the version pinned by the requirement."""

    name: str
    version: str
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        """A console script of the tool's venv, never one from PATH."""
        path = self.venv / "bin" / name
        if not path.is_file():
            raise EnvironmentProblem(f"{name} is not installed in {self.venv}",
                                     hint="remove that venv from the cache to reinstall it")
        return path


def parse_pinned(requirement: str) -> tuple[str, str]:
    """``keystone==30.0.0`` -> ("keystone", "30.0.0"): a tool is pinned, for repeatability."""
    match = _PINNED.match(requirement.strip())
    if match is None:
        raise UsageError(f"tool requirement {requirement!r} must pin one version (name==X.Y.Z)")
    return match.group("name").lower().replace("_", "-"), match.group("version")


def _marker(venv: Path) -> dict[str, str] | None:
    try:
        data = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_tool(cache: ReleaseCache, requirement: str, extra: Sequence[str] = (),
                log: Path | None = None) -> Tool:
    """Install ``requirement`` (plus ``extra`` packages) into ``<cache>/tools``, once.

    A venv without its marker is a half-finished install and is rebuilt from nothing.
    """
    name, version = parse_pinned(requirement)
    venv = cache.root / "tools" / f"{name}-{version}-{cache.py_tag}"
    wanted = {"kind": "tool", "source": " ".join([requirement, *extra]), "version": version}
    # two runs sharing a cache must not install the same tool at the same time
    with file_lock(venv.with_name(venv.name + ".lock")):
        marker = _marker(venv)
        if marker is None or any(marker.get(k) != v for k, v in wanted.items()):
            shutil.rmtree(venv, ignore_errors=True)
            try:
                cache.installer.create_venv(venv, log)
                cache.installer.install(venv, [requirement, *extra], log, {})
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            marker = {**wanted, "installer": cache.installer.name,
                      "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            (venv / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    return Tool(name, version, venv)
