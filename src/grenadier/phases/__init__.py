"""What each step of a run does."""

from __future__ import annotations
