"""The "Upgrade Impact" section of a Heat spec, generated from two installed releases.

Every fact comes from the releases themselves: alembic revisions and RPC API versions are read
from their source with ``ast`` (never imported), options come from each release's
``oslo-config-generator``, and resource types from a probe run with the release's own Python.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grenadier.checks.config import resource_types_probe
from grenadier.checks.config.diff import ConfigDiff, diff_findings, diff_inventories
from grenadier.checks.config.inventory import load_inventory, probed
from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.model.findings import Finding
from grenadier.releases.release import Release

MIGRATIONS_DIR = "db/migrations/versions"
#: (API name, file under heat/, class holding RPC_API_VERSION)
RPC_SOURCES = (("engine", "engine/service.py", "EngineService"),
               ("worker", "engine/worker.py", "WorkerService"))
STATUS_SOURCE = "cmd/status.py"
RESOURCE_CACHE_FILE = "grenadier-resource-types.json"


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str
    title: str


@dataclass(frozen=True)
class ResourceTypeChange:
    """A resource type whose support status differs; "" means the release does not have it."""

    type: str
    base: str
    target: str
    message: str = ""


@dataclass(frozen=True)
class Impact:
    base: str
    target: str
    base_head: str
    target_head: str
    migrations: tuple[Migration, ...]
    config: ConfigDiff
    findings: tuple[Finding, ...]
    resource_types: tuple[ResourceTypeChange, ...]
    #: (API, base version, target version) for every RPC API, changed or not
    rpc: tuple[tuple[str, str, str], ...]
    status_checks_added: tuple[str, ...] = ()
    status_checks_removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base, "target": self.target,
            "base_head": self.base_head, "target_head": self.target_head,
            "migrations": [vars(m) for m in self.migrations],
            "config": self.config.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "resource_types": [vars(r) for r in self.resource_types],
            "rpc": [list(r) for r in self.rpc],
            "status_checks_added": list(self.status_checks_added),
            "status_checks_removed": list(self.status_checks_removed),
            "notes": list(self.notes),
        }


# -- alembic revisions -------------------------------------------------------------------------


def _module_facts(path: Path) -> tuple[str, dict[str, object]]:
    """A module's docstring and its top-level constant assignments, read without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc}") from exc
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a constant: not something we need
    return ast.get_docstring(tree) or "", values


def read_migrations(release: Release) -> list[Migration]:
    """The release's alembic revisions, from the root to the head."""
    found: dict[str, Migration] = {}
    for path in sorted((release.heat_source / MIGRATIONS_DIR).glob("*.py")):
        doc, values = _module_facts(path)
        revision = values.get("revision")
        if isinstance(revision, str):
            down = values.get("down_revision")
            title = next(iter(doc.strip().splitlines()), "")
            found[revision] = Migration(revision, down if isinstance(down, str) else "", title)
    children = {m.down_revision: m for m in found.values()}
    ordered: list[Migration] = []
    current = children.get("")
    # Heat's history is linear; a branch would leave revisions out, so they are appended.
    while current is not None and current not in ordered:
        ordered.append(current)
        current = children.get(current.revision)
    return ordered + [m for m in found.values() if m not in ordered]


# -- RPC API versions and heat-status checks ---------------------------------------------------


def _class_constant(path: Path, class_name: str, constant: str) -> str:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == constant for t in item.targets):
                    return str(ast.literal_eval(item.value))
    return ""


def rpc_versions(release: Release) -> dict[str, str]:
    return {api: _class_constant(release.heat_source / source, cls, "RPC_API_VERSION")
            for api, source, cls in RPC_SOURCES}


def _check_name(node: ast.expr) -> str:
    # A check's name is a string, usually wrapped in the translation marker: _('...').
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def status_checks(release: Release) -> list[str]:
    """The names of ``heat-status upgrade check``'s checks (``Checks._upgrade_checks``)."""
    try:
        tree = ast.parse((release.heat_source / STATUS_SOURCE).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Tuple | ast.List)
                and any(isinstance(t, ast.Name) and t.id == "_upgrade_checks"
                        for t in node.targets)):
            return [_check_name(e.elts[0]) for e in node.value.elts
                    if isinstance(e, ast.Tuple) and e.elts]
    return []


# -- resource types ----------------------------------------------------------------------------


def load_resource_types(release: Release, *, log: Path | None = None) -> dict[str, Any]:
    """``{type: support status dict}`` of the release, cached in its venv like the options."""
    return probed(release, Path(resource_types_probe.__file__), "resource type probe",
                  (RESOURCE_CACHE_FILE, "types"), log=log, pick=lambda out: dict(out["types"]))


def resource_type_changes(base: dict[str, Any], target: dict[str, Any]) -> list[ResourceTypeChange]:
    changes: list[ResourceTypeChange] = []
    for name in sorted(set(base) | set(target)):
        old = str(base[name]["status"]) if name in base else ""
        new = str(target[name]["status"]) if name in target else ""
        if old != new:
            message = target.get(name, base.get(name, {})).get("message") or ""
            changes.append(ResourceTypeChange(name, old, new, str(message)))
    return changes


# -- the whole section -------------------------------------------------------------------------


def build_impact(base: Release, target: Release, *, log_dir: Path | None = None) -> Impact:
    """Everything a deployer must know about upgrading from ``base`` to ``target``."""
    def log(name: str, release: Release) -> Path | None:
        return log_dir / f"{name}-{release.label}.log" if log_dir else None

    base_inv = load_inventory(base, log=log("options", base))
    target_inv = load_inventory(target, log=log("options", target))
    config = diff_inventories(base_inv, target_inv)
    base_migrations, target_migrations = read_migrations(base), read_migrations(target)
    known = {m.revision for m in base_migrations}
    base_rpc, target_rpc = rpc_versions(base), rpc_versions(target)
    base_checks, target_checks = status_checks(base), status_checks(target)
    return Impact(
        base=base.label, target=target.label,
        base_head=base_migrations[-1].revision if base_migrations else "",
        target_head=target_migrations[-1].revision if target_migrations else "",
        migrations=tuple(m for m in target_migrations if m.revision not in known),
        config=config,
        findings=tuple(diff_findings(config)),
        resource_types=tuple(resource_type_changes(
            load_resource_types(base, log=log("resource-types", base)),
            load_resource_types(target, log=log("resource-types", target)))),
        rpc=tuple((api, base_rpc[api], target_rpc[api]) for api in base_rpc),
        status_checks_added=tuple(c for c in target_checks if c not in base_checks),
        status_checks_removed=tuple(c for c in base_checks if c not in target_checks),
        notes=tuple(f"{m.revision} of {base.label} is not in {target.label}: a downgrade?"
                    for m in base_migrations
                    if m.revision not in {t.revision for t in target_migrations}),
    )


# -- rendering ---------------------------------------------------------------------------------


def _heading(text: str, level: int, fmt: str) -> list[str]:
    if fmt == "md":
        return ["#" * (level + 1) + " " + text, ""]
    return [text, "=-~^"[level - 1] * len(text), ""]


def _code(text: str, fmt: str) -> str:
    return f"`{text}`" if fmt == "md" else f"``{text}``"


def _table(header: list[str], rows: list[list[str]], fmt: str) -> list[str]:
    if not rows:
        return ["None.", ""]
    if fmt == "md":
        def cells(row: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |"
        return [cells(header), "|" + "---|" * len(header), *map(cells, rows), ""]
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out += [f"   {'*' if i == 0 else ' '} - {c.replace(chr(10), ' ') or '-'}"
                for i, c in enumerate(row)]
    return [*out, ""]


def _sections(impact: Impact, fmt: str) -> list[str]:
    out = _heading("Findings", 2, fmt)
    out += [f"- **{f.severity}** {f.what}" + (f" ({f.found})" if f.found else "")
            for f in impact.findings] or ["None."]
    out += ["", *_heading("Database migrations", 2, fmt)]
    out += [f"Alembic head {_code(impact.base_head, fmt)} -> {_code(impact.target_head, fmt)}; "
            f"{len(impact.migrations)} migration(s) run by {_code('heat-manage db_sync', fmt)}.",
            ""]
    out += _table(["revision", "revises", "title"],
                  [[m.revision, m.down_revision, m.title] for m in impact.migrations], fmt)
    out += _heading("Configuration changes", 2, fmt)
    for title, changes in (("Heat options", impact.config.heat()),
                           ("Library options", impact.config.library())):
        out += _heading(title, 3, fmt)
        out += _table(["change", "option", "owner", "detail"],
                      [[c.kind, c.label, c.owner, c.detail] for c in changes], fmt)
    out += _heading("Resource types", 2, fmt)
    out += _table(["type", impact.base, impact.target, "message"],
                  [[r.type, r.base or "(absent)", r.target or "(absent)", r.message]
                   for r in impact.resource_types], fmt)
    out += _heading("RPC API versions", 2, fmt)
    out += _table(["API", impact.base, impact.target, "changed"],
                  [[api, old, new, "yes" if old != new else "no"]
                   for api, old, new in impact.rpc], fmt)
    out += _heading("heat-status upgrade checks", 2, fmt)
    out += [f"- added: {name}" for name in impact.status_checks_added]
    out += [f"- removed: {name}" for name in impact.status_checks_removed]
    if not (impact.status_checks_added or impact.status_checks_removed):
        out.append("No check added or removed.")
    return [*out, "", *[f"Note: {n}" for n in impact.notes]]


def render_impact(impact: Impact, fmt: str = "md") -> str:
    """The "Upgrade Impact" section as Markdown (``md``) or reStructuredText (``rst``)."""
    if fmt not in ("md", "rst"):
        raise UsageError(f"unknown impact format {fmt!r}", hint="use md or rst")
    counts = ", ".join(f"{n} {k}" for k, n in impact.config.counts(heat=True).items()) or "none"
    lines = [*_heading("Upgrade Impact", 1, fmt),
             f"Upgrading openstack-heat {impact.base} to {impact.target}. "
             f"Heat option changes: {counts}.", "",
             *_sections(impact, fmt)]
    return "\n".join(lines).rstrip() + "\n"
