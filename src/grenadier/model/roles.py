"""The two releases of a run, and the keys the state store keeps about them."""

from __future__ import annotations

from typing import Literal

Role = Literal["base", "target"]
ROLES: tuple[Role, ...] = ("base", "target")


def release_key(role: str) -> str:
    """The state store's key (under the runner's owner) of the release installed as ``role``."""
    return f"release-{role}"
