"""Long-running processes (databases, Heat) under one supervisor."""

from __future__ import annotations

from grenadier.services.api import RunningService, ServiceEvent, ServiceSpec, Supervisor

__all__ = ["RunningService", "ServiceEvent", "ServiceSpec", "Supervisor"]
