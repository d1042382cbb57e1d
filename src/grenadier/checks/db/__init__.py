"""Database checks after the target's db_sync: migration, schema-drift, data-preserved,
upgrade-status. ``probe.py`` beside this file is a standalone script run with a release's python.
"""

from __future__ import annotations

from grenadier.checks.db.checks import (
    DB_CHECKS,
    check_data_preserved,
    check_migration,
    check_schema_drift,
    check_upgrade_status,
    migration_failure,
    snapshot_restore_hint,
)

__all__ = [
    "DB_CHECKS",
    "check_data_preserved",
    "check_migration",
    "check_schema_drift",
    "check_upgrade_status",
    "migration_failure",
    "snapshot_restore_hint",
]
