"""Unit-test fixtures shared by every unit test module."""

from __future__ import annotations

import pytest

from grenadier.services import accounts


@pytest.fixture(autouse=True)
def services_run_as_grenadier(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that builds a service's spec makes no system user and changes no owner,
    even run as root: its services would run as grenadier itself. Tests of the users
    themselves set ``accounts.running_as_root`` back."""
    monkeypatch.setattr(accounts, "running_as_root", lambda: False)
