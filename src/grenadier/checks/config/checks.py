"""The configuration checks of the upgrade step, as named, selectable checks."""

from __future__ import annotations

from grenadier.checks.api import Check, CheckContext, Finding
from grenadier.checks.config.diff import diff_findings, diff_inventories
from grenadier.checks.config.inventory import Inventory, load_inventory
from grenadier.checks.config.oldconf import (
    check_config_files,
    collect_deprecation_warnings,
    deprecation_findings,
)


def _inventories(ctx: CheckContext) -> tuple[Inventory, Inventory]:
    log = ctx.deployment.logs / "config-inventory.log"
    return load_inventory(ctx.base, log=log), load_inventory(ctx.target, log=log)


def config_options(ctx: CheckContext) -> list[Finding]:
    """Options removed, renamed or changed between base and target (the release pair).

    The Heat upgrade-tests design lists "configuration options removed prematurely without
    notice" among the failures deployers meet. A removal only breaks a deployment that sets
    the option, so here a removal without notice is a warning; ``config-file`` makes it an
    error for the files this run really uses.
    """
    return diff_findings(diff_inventories(*_inventories(ctx)), removal="warning")


def config_file(ctx: CheckContext) -> list[Finding]:
    """Every option the run's config files set that the target ignores or deprecates.

    New code must run on the old configuration (grenade's Theory of Upgrade), and oslo.config
    silently ignores an option it no longer knows: the setting just stops working.
    """
    base, target = _inventories(ctx)
    return check_config_files(ctx.project.config_files(ctx.deployment), target, base,
                              ignore=ctx.project.harness_options)


def deprecation_warnings(ctx: CheckContext) -> list[Finding]:
    """The deprecation warnings the target logged while running on the old configuration.

    What works today with a warning stops working in the next release: grenade keeps such a
    deprecations log for the same reason. Counted per message, reported as information.
    """
    logs = sorted(ctx.deployment.logs.glob(f"{ctx.project.name}-target*.log"))
    return deprecation_findings(collect_deprecation_warnings(logs))


CONFIG_CHECKS = [
    Check("config-options", "pre-migration", config_options),
    Check("config-file", "pre-migration", config_file),
    Check("deprecation-warnings", "teardown", deprecation_warnings),
]
