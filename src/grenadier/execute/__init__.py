"""Run one command: a request in, an outcome out, every byte logged."""

from __future__ import annotations

from grenadier.execute.api import ExecuteRequest, Outcome
from grenadier.execute.run import run

__all__ = ["ExecuteRequest", "Outcome", "run"]
