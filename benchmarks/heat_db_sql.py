"""The SQL that multiplies a Heat database's rows: fresh ids, foreign keys kept consistent.

Used by make_heat_db.py. Copy ``k`` (1 .. factor-1) of every row gets:

- integer ids moved by ``k * span`` (``span``: the table's largest original id), in the row's
  own id and in every column that refers to it (``stack.raw_template_id``,
  ``resource.requires`` (a JSON list of resource ids), ``sync_point.entity_id`` when it holds a
  resource id...);
- UUIDs with their first 8 hex digits replaced by ``k`` (``0000000k-....``), wherever they
  appear: a stack id, the stacks that refer to it (``owner_id``, ``root_stack_id``), physical
  resource ids that are UUIDs (a nested stack, a software config); the rest of the UUID keeps
  the copies of two different rows apart;
- stack names suffixed ``-k`` (a project's stack names stay unique).

Everything else is copied as it is. Tables not listed in ``COLUMNS`` (e.g. ``service``, a
release's new tables) are not multiplied. The statements are plain SQL strings for PostgreSQL
and MariaDB/MySQL; make_heat_db.py runs them with a release's python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: how a column of a copy is derived: ("int", table whose ids it holds), ("intlist", table),
#: "uuid", "maybe-uuid" (only values that look like one), "entity" (a resource id or a UUID),
#: "name"; columns not listed are copied unchanged
Rule = tuple[str, str] | str
COLUMNS: dict[str, dict[str, Rule]] = {
    "raw_template_files": {"id": ("int", "raw_template_files")},
    "raw_template": {"id": ("int", "raw_template"), "files_id": ("int", "raw_template_files")},
    "user_creds": {"id": ("int", "user_creds")},
    "resource_properties_data": {"id": ("int", "resource_properties_data")},
    "stack": {"id": "uuid", "name": "name", "raw_template_id": ("int", "raw_template"),
              "prev_raw_template_id": ("int", "raw_template"),
              "user_creds_id": ("int", "user_creds"), "owner_id": "uuid",
              "current_traversal": "uuid"},
    "stack_tag": {"id": ("int", "stack_tag"), "stack_id": "uuid"},
    "stack_lock": {"stack_id": "uuid"},
    "resource": {"id": ("int", "resource"), "uuid": "uuid", "stack_id": "uuid",
                 "root_stack_id": "uuid", "nova_instance": "maybe-uuid",
                 "rsrc_prop_data_id": ("int", "resource_properties_data"),
                 "attr_data_id": ("int", "resource_properties_data"),
                 "current_template_id": ("int", "raw_template"),
                 "replaces": ("int", "resource"), "replaced_by": ("int", "resource"),
                 "needed_by": ("intlist", "resource"), "requires": ("intlist", "resource")},
    "resource_data": {"id": ("int", "resource_data"), "resource_id": ("int", "resource")},
    "event": {"id": ("int", "event"), "uuid": "uuid", "stack_id": "uuid",
              "physical_resource_id": "maybe-uuid",
              "rsrc_prop_data_id": ("int", "resource_properties_data")},
    "software_config": {"id": "uuid"},
    "software_deployment": {"id": "uuid", "config_id": "uuid", "server_id": "maybe-uuid"},
    "snapshot": {"id": "uuid", "stack_id": "uuid"},
    "sync_point": {"entity_id": "entity", "traversal_id": "uuid", "stack_id": "uuid"},
}
#: the tables whose integer ids are moved (their spans are measured first)
INT_TABLES = sorted({rule[1] for rules in COLUMNS.values() for rule in rules.values()
                     if isinstance(rule, tuple)})
#: references whose orphans are counted before and after (child, column, parent)
REFERENCES = (
    ("stack", "raw_template_id", "raw_template"), ("stack", "prev_raw_template_id",
                                                   "raw_template"),
    ("stack", "user_creds_id", "user_creds"), ("stack", "owner_id", "stack"),
    ("raw_template", "files_id", "raw_template_files"), ("resource", "stack_id", "stack"),
    ("resource", "root_stack_id", "stack"),
    ("resource", "rsrc_prop_data_id", "resource_properties_data"),
    ("resource", "attr_data_id", "resource_properties_data"),
    ("resource", "current_template_id", "raw_template"),
    ("resource_data", "resource_id", "resource"), ("event", "stack_id", "stack"),
    ("event", "rsrc_prop_data_id", "resource_properties_data"),
    ("stack_tag", "stack_id", "stack"), ("software_deployment", "config_id", "software_config"),
    ("snapshot", "stack_id", "stack"), ("sync_point", "stack_id", "stack"),
    ("stack_lock", "stack_id", "stack"),
)
COPIES = "gen_copies"
UUID_LIKE = "^[0-9a-f]{8}-[0-9a-f]{4}-"


class Dialect:
    """The few expressions that differ between PostgreSQL and MariaDB/MySQL."""

    def __init__(self, name: str) -> None:
        if name not in ("postgresql", "mysql"):
            raise ValueError(f"no multiplication SQL for {name}")
        self.pg = name == "postgresql"

    def q(self, name: str) -> str:
        return f'"{name}"' if self.pg else f"`{name}`"

    def concat(self, *parts: str) -> str:
        return " || ".join(parts) if self.pg else f"CONCAT({', '.join(parts)})"

    def uuid(self, col: str) -> str:
        prefix = "lpad(to_hex(c.k), 8, '0')" if self.pg else "LPAD(LOWER(HEX(c.k)), 8, '0')"
        return self.concat(prefix, f"substr({col}, 9)")

    def matches(self, col: str, pattern: str) -> str:
        return f"{col} ~ '{pattern}'" if self.pg else f"{col} REGEXP '{pattern}'"

    def as_text(self, expr: str) -> str:
        return f"CAST({expr} AS {'TEXT' if self.pg else 'CHAR'})"

    def intlist(self, col: str, shift: str) -> str:
        """A JSON list of integer ids, each moved by ``shift``."""
        if self.pg:
            inner = (f"SELECT COALESCE(CAST(json_agg(CAST(e AS BIGINT) + {shift}) AS TEXT), '[]') "
                     f"FROM json_array_elements_text(CAST({col} AS json)) AS e")
        else:
            inner = (f"SELECT COALESCE(JSON_ARRAYAGG(j.v + {shift}), '[]') FROM JSON_TABLE("
                     f"{col}, '$[*]' COLUMNS (v BIGINT PATH '$')) AS j")
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE ({inner}) END"

    def no_checks(self) -> str:
        return "SET session_replication_role = replica" if self.pg else \
            "SET FOREIGN_KEY_CHECKS = 0"


def expression(d: Dialect, column: str, rule: Rule | None, spans: Mapping[str, int]) -> str:
    """The value of ``column`` in copy ``c.k`` of row ``t``."""
    col = f"t.{d.q(column)}"
    if rule is None:
        return col
    if isinstance(rule, tuple):
        shift = f"c.k * {spans[rule[1]]}"
        return d.intlist(col, shift) if rule[0] == "intlist" else f"{col} + {shift}"
    if rule == "uuid":
        return d.uuid(col)
    if rule == "maybe-uuid":
        return f"CASE WHEN {d.matches(col, UUID_LIKE)} THEN {d.uuid(col)} ELSE {col} END"
    if rule == "entity":
        moved = d.as_text(f"CAST({col} AS {'BIGINT' if d.pg else 'SIGNED'}) + "
                          f"c.k * {spans['resource']}")
        return f"CASE WHEN {d.matches(col, '^[0-9]+$')} THEN {moved} ELSE {d.uuid(col)} END"
    if rule == "name":
        return d.concat(col, "'-'", d.as_text("c.k"))
    raise ValueError(f"unknown rule {rule!r} for {column}")


def span_queries(d: Dialect, tables: Sequence[str]) -> dict[str, str]:
    return {t: f"SELECT COALESCE(MAX(id), 0) FROM {d.q(t)}" for t in INT_TABLES if t in tables}


def multiply(d: Dialect, columns: Mapping[str, Sequence[str]], spans: Mapping[str, int],
             factor: int) -> list[str]:
    """Statements that add ``factor - 1`` copies of every row of the tables in ``COLUMNS``
    (``columns``: each existing table's columns, in order)."""
    spans = {t: max(1, s) for t, s in spans.items()}
    statements = [d.no_checks(), f"DROP TABLE IF EXISTS {COPIES}",
                  f"CREATE TABLE {COPIES} (k INTEGER PRIMARY KEY)"]
    statements += [f"INSERT INTO {COPIES} (k) VALUES " + ", ".join(
        f"({k})" for k in range(start, min(start + 1000, factor)))
        for start in range(1, factor, 1000)]
    for table, rules in COLUMNS.items():
        if table not in columns:
            continue
        names = list(columns[table])
        original = f"gen_orig_{table}"
        values = ", ".join(expression(d, c, rules.get(c), spans) for c in names)
        statements += [
            f"DROP TABLE IF EXISTS {original}",
            f"CREATE TABLE {original} AS SELECT * FROM {d.q(table)}",
            f"INSERT INTO {d.q(table)} ({', '.join(d.q(c) for c in names)}) "
            f"SELECT {values} FROM {original} t CROSS JOIN {COPIES} c",
            f"DROP TABLE {original}"]
    statements.append(f"DROP TABLE {COPIES}")
    if d.pg:  # explicit ids were inserted: Heat's own next insert must not collide
        statements += [f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                       f"(SELECT MAX(id) FROM {d.q(t)}))" for t in INT_TABLES if t in columns]
    return statements


def orphan_queries(d: Dialect, tables: Sequence[str]) -> dict[str, str]:
    """Per reference: rows whose column names a row its table does not have."""
    return {f"{child}.{column} -> {parent}":
            f"SELECT COUNT(*) FROM {d.q(child)} x WHERE x.{d.q(column)} IS NOT NULL AND NOT "
            f"EXISTS (SELECT 1 FROM {d.q(parent)} p WHERE p.id = x.{d.q(column)})"
            for child, column, parent in REFERENCES if child in tables and parent in tables}
