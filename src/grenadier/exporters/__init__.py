"""``grenadier export``: the same upgrade paths and suite on a CI system's own machinery."""

from __future__ import annotations

from grenadier.exporters.base import Exporter
from grenadier.exporters.github import export as github
from grenadier.exporters.grenade import export as grenade
from grenadier.exporters.zuul import export as zuul


def exporters() -> dict[str, Exporter]:
    return {"grenade": grenade, "zuul": zuul, "github": github}
