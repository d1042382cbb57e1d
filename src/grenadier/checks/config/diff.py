"""What changed in the configuration options from a base release to a target release.

Grenade's Theory of Upgrade says new code must run on the old configuration. An option removed
without a deprecation period breaks that promise silently: oslo.config ignores an option it does
not know, so the deployer's setting just stops having any effect. That is the one change this
module calls an error; every other change is information a deployer should read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from grenadier.checks.config.inventory import Inventory, OptionInfo
from grenadier.masking import mask_setting
from grenadier.model.findings import SEVERITIES, Finding

CHECK = "config-options"

#: every kind of change, in the order a report lists them, with its finding's what, severity
#: and remedy (added options make no finding; removed-without-notice's severity is
#: diff_findings' ``removal``)
KINDS: dict[str, tuple[str, str, str]] = {
    "removed-without-notice": (
        "option removed without notice", "error",
        "restore the option with deprecated_for_removal=True for one release, or document the "
        "removal in a release note (upgrade section); deployers: remove the setting and check "
        "what replaced it"),
    "removed-after-deprecation": ("option removed after deprecation", "info",
                                  "remove the setting from heat.conf"),
    "renamed": ("option renamed", "info",
                "rename the setting in heat.conf before the old name is dropped"),
    "alias-removed": ("deprecated name no longer accepted", "info",
                      "use the current name of the option in heat.conf"),
    "default-changed": ("default changed", "warning",
                        "set the option explicitly in heat.conf to keep the old behaviour"),
    "type-changed": ("type or bounds changed", "warning",
                     "check that the value set in heat.conf is still valid"),
    "choices-changed": ("choices changed", "warning",
                        "check that the value set in heat.conf is still one of the choices"),
    "newly-deprecated": ("option deprecated for removal", "info",
                         "plan to stop setting this option"),
    "deprecation-lifted": ("deprecation lifted", "info", "nothing to do"),
    "added": ("", "", ""),
}


@dataclass(frozen=True)
class OptionChange:
    """One option that differs between the two releases."""

    kind: str
    group: str
    name: str
    owner: str
    base: OptionInfo | None = None
    target: OptionInfo | None = None
    detail: str = ""

    @property
    def label(self) -> str:
        return f"[{self.group}] {self.name}"

    @property
    def is_heat(self) -> bool:
        return self.owner == "heat"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "group": self.group, "name": self.name, "owner": self.owner,
                "detail": self.detail}


@dataclass(frozen=True)
class ConfigDiff:
    base: str
    target: str
    changes: tuple[OptionChange, ...]

    def heat(self) -> list[OptionChange]:
        return [c for c in self.changes if c.is_heat]

    def library(self) -> list[OptionChange]:
        return [c for c in self.changes if not c.is_heat]

    def counts(self, *, heat: bool | None = None) -> dict[str, int]:
        found = Counter(c.kind for c in self.changes if heat is None or c.is_heat == heat)
        return {kind: found[kind] for kind in KINDS if found[kind]}

    def to_dict(self) -> dict[str, object]:
        return {"base": self.base, "target": self.target,
                "changes": [c.to_dict() for c in self.changes]}


def _removal(base: OptionInfo, target: Inventory) -> OptionChange:
    renamed_to = target.replacing(base.group, base.name)
    if renamed_to is not None:
        return OptionChange("renamed", base.group, base.name, base.owner, base, renamed_to,
                            f"now {renamed_to.label}; the old name is still accepted")
    if base.deprecated_for_removal:
        since = f" since {base.deprecated_since}" if base.deprecated_since else ""
        reason = f"deprecated for removal{since}: {base.deprecated_reason}"
        return OptionChange("removed-after-deprecation", base.group, base.name, base.owner, base,
                            None, reason.strip().rstrip(":"))
    return OptionChange("removed-without-notice", base.group, base.name, base.owner, base, None,
                        "not marked deprecated_for_removal in the base release")


def _type_text(opt: OptionInfo) -> str:
    bounds = [f"min={opt.minimum}" if opt.minimum else "",
              f"max={opt.maximum}" if opt.maximum else ""]
    return " ".join([opt.type, *[b for b in bounds if b]])


def _choices_text(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    # No choices means any value: going from none to some is a restriction, not an addition.
    if not old:
        return f"any value -> one of {', '.join(new)}"
    if not new:
        return "restricted -> any value"
    dropped = [c for c in old if c not in new]
    gained = [c for c in new if c not in old]
    parts = [f"dropped {', '.join(dropped)}" if dropped else "",
             f"added {', '.join(gained)}" if gained else ""]
    return "; ".join(p for p in parts if p) or "order changed"


def _default(opt: OptionInfo) -> str:
    # "<None>" is no value: showing it hides nothing
    return opt.default if opt.default == "<None>" else \
        mask_setting(opt.name, opt.default, secret=opt.secret)


def _changes(old: OptionInfo, new: OptionInfo) -> list[OptionChange]:
    """Every way one option kept under the same name differs."""
    found: list[OptionChange] = []

    def add(kind: str, detail: str) -> None:
        found.append(OptionChange(kind, new.group, new.name, new.owner, old, new, detail))

    if old.default != new.default:
        add("default-changed", f"{_default(old)} -> {_default(new)}")
    if _type_text(old) != _type_text(new):
        add("type-changed", f"{_type_text(old)} -> {_type_text(new)}")
    if old.choices != new.choices:
        add("choices-changed", _choices_text(old.choices, new.choices))
    if new.deprecated_for_removal and not old.deprecated_for_removal:
        add("newly-deprecated", new.deprecated_reason or "deprecated for removal")
    if old.deprecated_for_removal and not new.deprecated_for_removal:
        add("deprecation-lifted", "no longer deprecated for removal")
    return found


def _aliases_removed(old: OptionInfo, new: OptionInfo, target: Inventory) -> list[OptionChange]:
    """Deprecated names the base still accepted for an option and the target no longer does.

    A heat.conf that still uses such a name is silently ignored by the target (26.0.2 accepted
    ``[DEFAULT] stack_user_domain`` for ``stack_user_domain_id``; 27.0.1 does not).
    """
    return [OptionChange("alias-removed", group, name, old.owner, old, new,
                         f"no longer accepted for {new.label}")
            for group, name in old.deprecated_opts
            if target.get(group, name) is None and target.replacing(group, name) is None]


def diff_inventories(base: Inventory, target: Inventory) -> ConfigDiff:
    """Compare two inventories option by option (names compared as oslo.config does)."""
    changes: list[OptionChange] = []
    for old in base.options:
        new = target.get(old.group, old.name)
        if new is None:
            changes.append(_removal(old, target))
        else:
            changes.extend(_changes(old, new) + _aliases_removed(old, new, target))
    for new in target.options:
        if base.get(new.group, new.name) is None and not _renames_base(new, base, target):
            changes.append(OptionChange("added", new.group, new.name, new.owner, None, new,
                                        new.help))
    order = {kind: i for i, kind in enumerate(KINDS)}
    changes.sort(key=lambda c: (not c.is_heat, order[c.kind], c.owner, c.group, c.name))
    return ConfigDiff(base.release, target.release, tuple(changes))


def _renames_base(new: OptionInfo, base: Inventory, target: Inventory) -> bool:
    """The new name of a renamed option is reported once, as the rename, not also as added."""
    return any(base.get(g, n) is not None and target.get(g, n) is None
               for g, n in new.deprecated_opts)


# -- findings ------------------------------------------------------------------------------------

def _finding(change: OptionChange, base: str, target: str, removal: str) -> Finding:
    what, severity, remedy = KINDS[change.kind]
    if change.kind == "removed-without-notice":
        severity = removal
    owner = "" if change.is_heat else f" ({change.owner}, library)"
    if not change.is_heat and severity == "error":
        # Both venvs get today's libraries, not each release's pinned ones: a library option
        # that vanished says more about the install than about the Heat release under test.
        severity = "warning"
    removed_silently = change.kind == "removed-without-notice"
    return Finding(
        check=CHECK,
        severity=severity,
        what=f"{what}: {change.label}{owner} ({base} -> {target})",
        where=change.label,
        expected=_expected(change, change.base),
        found=f"absent from {target}, not deprecated in {base}" if removed_silently
        else change.detail,
        remedy=remedy,
        kind=change.kind,
    )


def _expected(change: OptionChange, old: OptionInfo | None) -> str:
    if change.kind == "removed-without-notice":
        return "deprecated_for_removal=True in the release before the removal"
    if change.kind == "default-changed" and old is not None:
        return f"default {_default(old)}"
    return ""


def diff_findings(diff: ConfigDiff, *, include_library: bool = True,
                  removal: str = "error") -> list[Finding]:
    """Findings for every change a deployer must know about (not for added options), worst first.

    ``removal`` is the severity of a Heat option removed without notice: an error for the
    release pair (``grenadier impact``); a run lowers it to a warning, because only a
    deployment that sets the option breaks, and ``config-file`` reports that one as an error.
    """
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    findings = [_finding(c, diff.base, diff.target, removal) for c in diff.changes
                if c.kind != "added" and (include_library or c.is_heat)]
    return sorted(findings, key=lambda f: rank.get(f.severity, len(rank)))
