"""Configuration upgrade checks: option inventories, their diff, old config on new code."""

from __future__ import annotations

from grenadier.checks.config.diff import (
    ConfigDiff,
    OptionChange,
    diff_findings,
    diff_inventories,
)
from grenadier.checks.config.inventory import Inventory, OptionInfo, load_inventory
from grenadier.checks.config.oldconf import (
    check_config_files,
    collect_deprecation_warnings,
    deprecation_findings,
    parse_conf,
)

__all__ = [
    "ConfigDiff",
    "Inventory",
    "OptionChange",
    "OptionInfo",
    "check_config_files",
    "collect_deprecation_warnings",
    "deprecation_findings",
    "diff_findings",
    "diff_inventories",
    "load_inventory",
    "parse_conf",
]
