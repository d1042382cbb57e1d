"""Heat's hook implementations, registered through the ``grenadier`` entry point."""

from __future__ import annotations

from grenadier.plugins.api import Project
from grenadier.plugins.heat.project import HeatProject
from grenadier.plugins.spec import hookimpl


@hookimpl
def grenadier_project(name: str) -> Project | None:
    return HeatProject() if name == HeatProject.name else None


@hookimpl
def grenadier_project_names() -> list[str]:
    return [HeatProject.name]

