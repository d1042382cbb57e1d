"""The pure half of the database checks: what probe.py, alembic and heat-status print, compared.

No database, no subprocess and no CheckContext here, so every function is tested on crafted
JSON, logs and migration scripts (tests/unit/test_db_checks.py); checks.py runs the commands
and turns these results into findings.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from grenadier.execute import Outcome

Json = dict[str, Any]
#: keys of lost or changed rows a finding quotes as examples
EXAMPLES = 3


# --- migration -----------------------------------------------------------------------------
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)"
_LOG_LINE = re.compile(_STAMP + r" ")
_UPGRADE_LINE = re.compile(_STAMP + r" .*Running upgrade (\S*) -> (\S+)(?:, (.*))?$")


def revision_durations(log_text: str) -> dict[str, float]:
    """Seconds each revision took: from its "Running upgrade" line to the next log line."""
    events: list[tuple[datetime, str | None]] = []
    for line in log_text.splitlines():
        if match := _UPGRADE_LINE.match(line):
            events.append((datetime.fromisoformat(match[1]), match[3]))
        elif match := _LOG_LINE.match(line):
            events.append((datetime.fromisoformat(match[1]), None))
    durations = {}
    for (stamp, revision), (next_stamp, _) in itertools.pairwise(events):
        if revision is not None:
            durations[revision] = round((next_stamp - stamp).total_seconds(), 3)
    return durations


def applied_revisions(revisions: list[Json], before: Iterable[str],
                      heads: Iterable[str]) -> list[Json]:
    """The revisions between ``before`` (exclusive) and ``heads``, base first."""
    by_id = {r["revision"]: r for r in revisions}
    stop, todo, seen = set(before), list(heads), set()
    while todo:
        rev = todo.pop()
        if rev in stop or rev in seen or rev not in by_id:
            continue
        seen.add(rev)
        down = by_id[rev]["down_revision"]
        todo.extend(down if isinstance(down, list) else [down] if down else [])
    return [r for r in revisions if r["revision"] in seen]


def migration_error(outcome: Outcome) -> tuple[str, str]:
    """(the revision that was running, alembic's error) from a failed db_sync's output."""
    text = outcome.out + "\n" + outcome.err
    running = [m for line in text.splitlines() if (m := _UPGRADE_LINE.match(line))]
    where = f"{running[-1][2] or 'base'} -> {running[-1][3]}" if running else ""
    if running and running[-1][4]:
        where += f" ({running[-1][4]})"
    errors = [line.strip() for line in outcome.err.splitlines() if line.startswith("ERROR")]
    error = errors[-1] if errors else outcome.last_error_line()
    if outcome.timed_out:
        error = f"timed out after {outcome.duration:.0f} s"
    return where, error.removeprefix("ERROR: ")


# --- schema-drift --------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemaDiff:
    """One difference between the migrated schema and the freshly created one."""

    table: str
    kind: str
    name: str
    expected: str
    found: str
    severity: str = "error"


def _keyed(items: list[Json], key: Callable[[Json], str]) -> dict[str, Json]:
    return {key(item): item for item in items}


def _index_key(item: Json) -> str:
    return f"{','.join(item['columns'])}{' unique' if item.get('unique') else ''}"


def _fk_key(item: Json) -> str:
    return (f"({','.join(item['columns'])}) -> {item['referred_table']}"
            f"({','.join(item['referred_columns'])}) ondelete={item.get('ondelete')}")


def _compare_named(table: str, kind: str, migrated: list[Json], fresh: list[Json],
                   key: Callable[[Json], str]) -> list[SchemaDiff]:
    # Matched by what they cover, not by name: a name-only difference is reported on its own.
    mine, theirs = _keyed(migrated, key), _keyed(fresh, key)
    diffs = [SchemaDiff(table, kind, str(theirs[k].get("name") or k), k, "missing")
             for k in sorted(set(theirs) - set(mine))]
    diffs += [SchemaDiff(table, kind, str(mine[k].get("name") or k), "absent", k)
              for k in sorted(set(mine) - set(theirs))]
    for k in sorted(set(mine) & set(theirs)):
        if mine[k].get("name") != theirs[k].get("name"):
            # same function, but a later migration that names it (drop_index) would fail
            diffs.append(SchemaDiff(table, f"{kind} name", k, str(theirs[k].get("name")),
                                    str(mine[k].get("name")), severity="warning"))
    return diffs


def _compare_table(table: str, migrated: Json, fresh: Json) -> list[SchemaDiff]:
    diffs = []
    mcols, fcols = migrated["columns"], fresh["columns"]
    for name in sorted(set(fcols) - set(mcols)):
        diffs.append(SchemaDiff(table, "column", name, fcols[name]["type"], "missing"))
    for name in sorted(set(mcols) - set(fcols)):
        diffs.append(SchemaDiff(table, "column", name, "absent", mcols[name]["type"]))
    for name in sorted(set(mcols) & set(fcols)):
        for attr in ("type", "nullable", "default"):
            if mcols[name].get(attr) != fcols[name].get(attr):
                diffs.append(SchemaDiff(table, f"column {attr}", name,
                                        str(fcols[name].get(attr)), str(mcols[name].get(attr))))
    if migrated["primary_key"] != fresh["primary_key"]:
        diffs.append(SchemaDiff(table, "primary key", table, ",".join(fresh["primary_key"]),
                                ",".join(migrated["primary_key"])))
    diffs += _compare_named(table, "index", migrated["indexes"], fresh["indexes"], _index_key)
    diffs += _compare_named(table, "unique constraint", migrated["unique_constraints"],
                            fresh["unique_constraints"], _index_key)
    diffs += _compare_named(table, "foreign key", migrated["foreign_keys"],
                            fresh["foreign_keys"], _fk_key)
    return diffs


def compare_schemas(migrated: Json, fresh: Json) -> list[SchemaDiff]:
    """Every difference between two ``probe.py schema`` outputs of the same backend."""
    mine, theirs = migrated["tables"], fresh["tables"]
    diffs = [SchemaDiff(t, "table", t, "present", "missing")
             for t in sorted(set(theirs) - set(mine))]
    diffs += [SchemaDiff(t, "table", t, "absent", "present")
              for t in sorted(set(mine) - set(theirs))]
    for table in sorted(set(mine) & set(theirs)):
        diffs += _compare_table(table, mine[table], theirs[table])
    return diffs


# --- data-preserved ------------------------------------------------------------------------
@dataclass
class MigrationOps:
    """What the upgrade() of migration scripts says it changes, per table."""

    changed: dict[str, set[str]] = field(default_factory=dict)
    dropped_tables: set[str] = field(default_factory=set)

    def add(self, table: str | None, column: str | None) -> None:
        if table and column:
            self.changed.setdefault(table, set()).add(column)


_SQL_UPDATE = re.compile(r"\bUPDATE\s+[`\"]?(\w+)[`\"]?\s+SET\s+(.+?)(?:\bWHERE\b|$)", re.I | re.S)


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _table_aliases(tree: ast.AST) -> dict[str, str]:
    """``name = sa.Table('snapshot', ...)`` / ``with op.batch_alter_table('t') as name``."""
    aliases = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and _call_name(node.value) in ("Table", "table") and node.value.args):
            for target in node.targets:
                if isinstance(target, ast.Name) and (name := _literal(node.value.args[0])):
                    aliases[target.id] = name
        if isinstance(node, ast.With):
            for item in node.items:
                call, var = item.context_expr, item.optional_vars
                if isinstance(call, ast.Call) and _call_name(call) == "batch_alter_table" and \
                        isinstance(var, ast.Name) and call.args:
                    aliases[var.id] = _literal(call.args[0]) or ""
    return aliases


def _receiver(node: ast.Call) -> str:
    func = node.func
    while isinstance(func, ast.Attribute):
        func = func.value  # type: ignore[assignment]
        if isinstance(func, ast.Call):
            func = func.func
    return getattr(func, "id", "")


def _scan_call(node: ast.Call, aliases: dict[str, str], ops: MigrationOps) -> None:
    name, args = _call_name(node), node.args
    receiver = _receiver(node)
    table = aliases.get(receiver) if receiver in aliases else (_literal(args[0]) if args else None)
    rest = args[1:] if receiver not in aliases else args
    if name in ("alter_column", "drop_column") and rest:
        ops.add(table, _literal(rest[0]))
    elif name == "add_column" and rest and isinstance(rest[0], ast.Call) and rest[0].args:
        ops.add(table, _literal(rest[0].args[0]))
    elif name == "drop_table" and table:
        ops.dropped_tables.add(table)
    elif name == "values" and receiver in aliases:
        keys = [_literal(k) for a in args if isinstance(a, ast.Dict) for k in a.keys]
        for key in [*keys, *(kw.arg for kw in node.keywords)]:
            ops.add(aliases[receiver], key)
    elif name in ("execute", "text") and args and (sql := _literal(args[0])):
        for match in _SQL_UPDATE.finditer(sql):
            for column in re.findall(r"[`\"]?(\w+)[`\"]?\s*=", match[2]):
                ops.add(match[1], column)


def migration_ops(sources: Iterable[str]) -> MigrationOps:
    """Columns the ``upgrade()`` of these migration scripts alter, add, drop or update."""
    ops = MigrationOps()
    for source in sources:
        tree = ast.parse(source)
        for func in tree.body:
            if isinstance(func, ast.FunctionDef) and func.name == "upgrade":
                aliases = _table_aliases(func)
                for node in ast.walk(func):
                    if isinstance(node, ast.Call):
                        _scan_call(node, aliases, ops)
    return ops


def retyped_columns(before: Json, after: Json) -> dict[str, set[str]]:
    """Columns whose type changed between two ``schema`` outputs: their values may change."""
    out: dict[str, set[str]] = {}
    for table, spec in before["tables"].items():
        after_cols = after["tables"].get(table, {}).get("columns", {})
        for column, col in spec["columns"].items():
            if column in after_cols and after_cols[column]["type"] != col["type"]:
                out.setdefault(table, set()).add(column)
    return out


@dataclass
class TableReport:
    """Per table: rows before/after, rows lost, values changed, a few example keys."""

    table: str
    before: int
    after: int
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    changed: int = 0
    changed_columns: dict[str, int] = field(default_factory=dict)
    changed_examples: list[str] = field(default_factory=list)
    deliberate: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    note: str = ""


def _changed_rows(report: TableReport, groups: list[Json], deliberate: set[str]) -> None:
    """Count the rows whose changed columns are not all ones the migrations changed."""
    for group in groups:
        columns = [c for c in group["columns"] if c not in deliberate]
        if not columns:
            continue
        report.changed += int(group["rows"])
        for column in columns:
            report.changed_columns[column] = report.changed_columns.get(column, 0) + \
                int(group["rows"])
        room = EXAMPLES - len(report.changed_examples)
        report.changed_examples += [str(k) for k in group["examples"][:max(0, room)]]


def _table_report(name: str, before: Json, after: Json | None, detail: Json | None,
                   deliberate: set[str]) -> TableReport:
    report = TableReport(name, int(before["count"]), int(after["count"]) if after else 0,
                         deliberate=sorted(deliberate & set(before["columns"])))
    detail = detail or {}
    report.note = str(detail.get("note", ""))
    if after is None:
        report.lost = int(detail.get("lost", report.before))
        report.lost_examples = [str(k) for k in detail.get("lost_examples", [])][:EXAMPLES]
        return report
    report.dropped_columns = sorted(set(before["columns"]) - set(after["columns"]) - deliberate)
    if "lost" in detail:
        report.lost = int(detail["lost"])
        report.lost_examples = [str(k) for k in detail["lost_examples"]][:EXAMPLES]
    elif report.after < report.before or before["keys"] != after["keys"]:
        # no row detail (no primary key, or a changed one): what the figures prove
        report.lost = max(report.before - report.after, 0)
    _changed_rows(report, detail.get("changed", []), deliberate)
    if not detail.get("changed") and "lost" not in detail:
        differing = [c for c in before["columns"] if c in after["sums"] and c not in deliberate
                     and before["sums"][c] != after["sums"][c]]
        if differing and not report.lost:
            # the content changed without row detail: name the columns, rows unknown
            report.changed_columns = {c: 0 for c in differing}
    return report


def compare_digests(before: Json, after: Json, ops: MigrationOps,
                    retyped: dict[str, set[str]]) -> list[TableReport]:
    """Compare ``probe.py``'s capture-digests and compare-digests outputs (per-table SQL
    aggregates, and the row detail the database computed for tables whose aggregates
    differ); columns the migrations changed on purpose are not findings."""
    reports = []
    details = after.get("detail", {})
    for name, table in sorted(before["tables"].items()):
        if name in ops.dropped_tables:
            continue
        deliberate = ops.changed.get(name, set()) | retyped.get(name, set())
        reports.append(_table_report(name, table, after["tables"].get(name),
                                      details.get(name), deliberate))
    return reports


# --- upgrade-status ------------------------------------------------------------------------
def parse_upgrade_check(text: str) -> list[dict[str, str]]:
    """The Check/Result/Details blocks of ``heat-status upgrade check``'s table."""
    results: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for raw in text.splitlines():
        if not raw.startswith("|"):
            continue
        line = raw.strip().strip("|").rstrip()
        match = re.match(r"\s*(Check|Result|Details): ?(.*)", line)
        if match:
            last = match[1].lower()
            if last == "check":
                current = {}
                results.append(current)
            current[last] = match[2].strip()
        elif last == "details" and line.strip():
            prev = current.get("details", "")
            sep = "" if prev.endswith(("-", "/")) else " "
            current["details"] = prev + sep + line.strip()
    return results
