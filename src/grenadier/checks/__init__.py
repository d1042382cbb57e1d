"""Named, selectable checks and the findings they report."""

from __future__ import annotations

from grenadier.checks.api import Check, CheckRegistry
from grenadier.model.findings import Finding

__all__ = ["Check", "CheckRegistry", "Finding"]
