"""An installed release (or tool): its venv, its binaries, its version facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grenadier.errors import EnvironmentProblem


class CachedVenv:
    """A venv of the cache (a release or a tool): its interpreter and its console scripts."""

    label: str
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        """A console script of this venv, never one from PATH (nox's ``external="error"``)."""
        path = self.venv / "bin" / name
        if not path.is_file():
            raise EnvironmentProblem(
                f"{name} is not installed in the {self.label} venv ({self.venv})",
                hint="remove the venv from the cache to reinstall it",
            )
        return path


@dataclass(frozen=True)
class Release(CachedVenv):
    """A Heat release installed in its own virtualenv. Nothing of it is imported by grenadier."""

    label: str
    version: str
    venv: Path
    kind: str
    source: str = ""
    #: how its libraries were chosen (``constraints.Environment.to_dict``)
    environment: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages"))
        if not found:
            raise EnvironmentProblem(f"no site-packages in {self.venv}")
        return found[0]

    @property
    def heat_source(self) -> Path:
        """Heat's own code, installed in the venv: read it, never import it here."""
        return self.site_packages / "heat"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "version": self.version, "venv": str(self.venv),
                "kind": self.kind, "source": self.source, "environment": self.environment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        return cls(data["label"], data["version"], Path(data["venv"]), data["kind"],
                   data.get("source", ""), dict(data.get("environment") or {}))
