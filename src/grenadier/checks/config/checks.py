"""The configuration checks of the upgrade step, as named, selectable checks."""

from __future__ import annotations

from dataclasses import replace

from grenadier.checks.api import Check, CheckContext, Finding
from grenadier.checks.config.diff import diff_findings, diff_inventories
from grenadier.checks.config.inventory import load_inventory
from grenadier.checks.config.oldconf import check_settings, parse_conf

#: options grenadier's own launcher reads (heat-api and its group were removed in 25.0.0)
LAUNCHER_OPTIONS = frozenset({("heat_api", "bind_host"), ("heat_api", "bind_port")})


def config_options(ctx: CheckContext) -> list[Finding]:
    """Options removed, renamed or changed between base and target (the release pair).

    The Heat upgrade-tests design lists "configuration options removed prematurely without
    notice" among the failures deployers meet. A removal only breaks a deployment that sets
    the option, so here a removal without notice is a warning; ``config-file`` makes it an
    error for the files this run really uses.
    """
    logs = ctx.deployment.logs
    base = load_inventory(ctx.base, log=logs / "config-inventory.log")
    target = load_inventory(ctx.target, log=logs / "config-inventory.log")
    ctx.facts["config-diff-counts"] = diff_inventories(base, target).counts(heat=True)
    findings = diff_findings(diff_inventories(base, target))
    return [replace(f, severity="warning") if f.severity == "error" else f for f in findings]


def config_file(ctx: CheckContext) -> list[Finding]:
    """Every option the run's config files set that the target ignores or deprecates.

    New code must run on the old configuration (grenade's Theory of Upgrade), and oslo.config
    silently ignores an option it no longer knows: the setting just stops working.
    """
    logs = ctx.deployment.logs
    base = load_inventory(ctx.base, log=logs / "config-inventory.log")
    target = load_inventory(ctx.target, log=logs / "config-inventory.log")
    findings: list[Finding] = []
    for path in ctx.project.config_files(ctx.deployment):
        parsed = parse_conf(path)
        findings.extend(Finding("config-file", "error", f"oslo.config cannot parse {path}",
                                where=f"{path}:{line}", found=message, remedy="fix the file")
                        for line, message in parsed.errors)
        settings = [s for s in parsed.settings if (s.section, s.key) not in LAUNCHER_OPTIONS]
        findings.extend(check_settings(settings, target, base))
    return findings


CONFIG_CHECKS = [
    Check("config-options", "pre-migration", config_options),
    Check("config-file", "pre-migration", config_file),
]
