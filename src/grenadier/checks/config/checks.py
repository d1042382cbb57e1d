"""The configuration checks of the upgrade step, as named, selectable checks."""

from __future__ import annotations

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.config.announced import with_notes
from grenadier.checks.config.diff import diff_findings, diff_inventories
from grenadier.checks.config.inventory import Inventory, load_inventory
from grenadier.checks.config.oldconf import (
    check_config_files,
    collect_deprecation_warnings,
    deprecation_findings,
)
from grenadier.model.findings import Finding


def _inventories(ctx: CheckContext) -> tuple[Inventory, Inventory]:
    log = ctx.deployment.logs / "config-inventory.log"
    return load_inventory(ctx.base, log=log), load_inventory(ctx.target, log=log)


def config_options(ctx: CheckContext) -> list[Finding]:
    """Options removed, renamed or changed between base and target (the release pair).

    The Heat upgrade-tests design lists "configuration options removed prematurely without
    notice" among the failures deployers meet. For a target that is a source tree (the patch
    under review) a Heat option removed without a deprecation period breaks OpenStack's
    deprecation policy: an error. Between published releases it is done; it only breaks a
    deployment that sets the option (``config-file`` makes that an error for the files this
    run uses), so it is a warning saying whether the target's release notes announced it.
    """
    removal = "error" if ctx.target.kind == "local" else "warning"
    findings = diff_findings(diff_inventories(*_inventories(ctx)), removal=removal)
    return with_notes(findings, ctx.target, ctx.deployment.logs / "release-notes.log")


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
