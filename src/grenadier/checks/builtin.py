"""The checks grenadier ships: database, configuration and RPC contract."""

from __future__ import annotations

from grenadier.checks.api import Check
from grenadier.checks.config.checks import CONFIG_CHECKS
from grenadier.checks.db.checks import DB_CHECKS
from grenadier.checks.rpc.checks import RPC_CHECKS


def builtin_checks() -> list[Check]:
    return [*DB_CHECKS, *CONFIG_CHECKS, *RPC_CHECKS]
