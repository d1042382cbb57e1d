"""The checks grenadier ships: database and configuration."""

from __future__ import annotations

from grenadier.checks.api import Check


def builtin_checks() -> list[Check]:
    checks: list[Check] = []
    try:
        from grenadier.checks.db.checks import DB_CHECKS
    except ImportError:  # until the database checks land
        DB_CHECKS = []
    checks.extend(DB_CHECKS)
    try:
        from grenadier.checks.config.checks import CONFIG_CHECKS
    except ImportError:  # until the configuration checks land
        CONFIG_CHECKS = []
    checks.extend(CONFIG_CHECKS)
    return checks
