"""Heat's hook implementations, registered through the ``grenadier`` entry point."""

from __future__ import annotations

from grenadier.plugins.heat.project import HeatProject
from grenadier.plugins.spec import hookimpl
from grenadier.project.api import Project


@hookimpl
def grenadier_project(name: str) -> Project | None:
    return HeatProject() if name == HeatProject.name else None


@hookimpl
def grenadier_project_names() -> list[str]:
    return [HeatProject.name]
