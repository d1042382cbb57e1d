"""Hook specifications. Each is a documented no-op; plugins implement the ones they need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from grenadier.project.api import Project

PROJECT = "grenadier"


class CheckRegistry(Protocol):
    """Where a plugin adds its checks (grenadier.checks.api.CheckRegistry): plugins sit below
    the checks, so the hook names only what it calls."""

    def add(self, check: Any) -> None: ...
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def grenadier_project(name: str) -> Project | None:  # type: ignore[empty-body]
    """Return the :class:`~grenadier.project.api.Project` called ``name``, if this plugin has it."""


@hookspec
def grenadier_project_names() -> list[str]:  # type: ignore[empty-body]
    """Names of the projects this plugin provides (for the error that names a project no
    plugin has)."""


@hookspec
def grenadier_register_checks(registry: CheckRegistry) -> None:
    """Add named checks to ``registry`` (each with a docstring saying why it exists)."""
