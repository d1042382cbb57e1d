"""Content digests of a Heat database, computed by the database itself; part of ``probe.py``.

Like ``probe.py``, this runs with a release's python (SQLAlchemy, the DB driver) and never in
grenadier's own: ``probe.py`` loads it by file path.

Per table the database computes, in one scan, SQL aggregates: the row count, the sum of a hash
of each row's primary key, and per column the sum of a hash of (primary key, value). A lost row
changes the count or the key sum; a changed value changes its column's sum; a value moved to
another row changes it too, since each hash binds a value to its row's key. Sums are taken as
exact numbers (PostgreSQL ``numeric``, MySQL ``DECIMAL``), so they never overflow.

Naming the rows involved needs the rows as they were. ``capture`` therefore keeps, beside each
table, a table of its primary keys and per-column hashes (``grenadier_rows__<table>``): its
aggregates are the "before" figures, and only a table whose "after" aggregates differ is
joined against it, in SQL, to count lost and changed rows and quote a few of their keys.
``compare`` drops those tables: nothing of grenadier's stays in the database.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import sqlalchemy as sa  # type: ignore[import-not-found]

Json = dict[str, Any]
#: tables kept by ``capture``: this prefix + the table's name
SIDE_PREFIX = "grenadier_rows__"
#: keys of lost or changed rows quoted per table (and per set of changed columns)
EXAMPLES = 3
#: the changed columns of a row are one bit each in an integer
MAX_MASK_COLUMNS = 62
KEY_COLUMN, HASH_COLUMN = "grenadier_k", "grenadier_h{}"


def _sqlite_hash(text: Any) -> int:
    data = text if isinstance(text, bytes) else str(text).encode("utf-8", "surrogatepass")
    return zlib.crc32(data)


def register_functions(engine: Any) -> None:
    """SQLite has no hash function of its own: give every connection one (CRC-32)."""
    if engine.dialect.name != "sqlite":
        return

    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("grenadier_hash", 1, _sqlite_hash, deterministic=True)

    sa.event.listen(engine, "connect", _connect)


class Sql:
    """The SQL expressions of one dialect: a value as text, a hash, the sum of hashes."""

    def __init__(self, dialect: Any) -> None:
        self.name = dialect.name
        self.quote = dialect.identifier_preparer.quote

    def text(self, column: str, table: str = "") -> str:
        """``column`` as text, NULL told apart from every value (the hash input)."""
        ref = f"{table}.{self.quote(column)}" if table else self.quote(column)
        if self.name == "sqlite":
            return f"quote({ref})"  # 'NULL', or a literal: 'text', X'blob', 12
        if self.name == "postgresql":
            return f"COALESCE('v' || CAST({ref} AS TEXT), 'n')"
        return f"COALESCE(CONCAT('v', {ref}), 'n')"

    def concat(self, parts: list[str]) -> str:
        if self.name == "mysql" or self.name == "mariadb":
            return f"CONCAT({', '.join(parts)})"
        return " || ".join(parts)

    def hash(self, text: str) -> str:
        if self.name == "postgresql":
            return f"hashtextextended({text}, 0)"
        if self.name == "sqlite":
            return f"grenadier_hash({text})"
        return f"CRC32({text})"

    def key(self, pk: list[str], table: str = "") -> str:
        return self.concat(_between([self.text(c, table) for c in pk], "'|'"))

    def cell(self, pk: list[str], column: str, table: str = "") -> str:
        return self.hash(self.concat([self.key(pk, table), "':'", self.text(column, table)]))

    def limit(self, sql: str, count: int) -> str:
        return f"{sql} LIMIT {count}"


def _between(items: list[str], separator: str) -> list[str]:
    out: list[str] = []
    for item in items:
        out += [separator, item] if out else [item]
    return out


def side_name(table: str) -> str:
    return SIDE_PREFIX + table


def is_side(table: str) -> bool:
    return table.startswith(SIDE_PREFIX)


def _layout(insp: Any, table: str) -> tuple[list[str], list[str]]:
    columns = [c["name"] for c in insp.get_columns(table)]
    pk = list((insp.get_pk_constraint(table) or {}).get("constrained_columns") or [])
    return pk, columns


def _aggregate_row(values: Any, columns: list[str]) -> Json:
    count, keys, *sums = values
    return {"count": int(count or 0), "keys": str(keys or 0),
            "sums": {c: str(s or 0) for c, s in zip(columns, sums, strict=True)}}


def _live_aggregates(conn: Any, sql: Sql, table: str, pk: list[str],
                     columns: list[str]) -> Json:
    """One scan of ``table``: count, key sum, per-column sums (all zero for an empty table)."""
    key = pk or columns  # a table without a primary key: each row is keyed by all its values
    parts = [f"SUM({sql.hash(sql.key(key))})"] + [f"SUM({sql.cell(key, c)})" for c in columns]
    row = conn.execute(sa.text(f"SELECT COUNT(*), {', '.join(parts)} FROM {sql.quote(table)}"
                               )).one()
    return _aggregate_row(row, columns)


def _keep(conn: Any, sql: Sql, table: str, pk: list[str], columns: list[str]) -> Json:
    """Keep ``table``'s keys and per-column hashes beside it; its aggregates, from that copy."""
    side = sql.quote(side_name(table))
    hashes = [f"{sql.cell(pk, c)} AS {HASH_COLUMN.format(i)}" for i, c in enumerate(columns)]
    select = ", ".join([*(sql.quote(c) for c in pk),
                        f"{sql.hash(sql.key(pk))} AS {KEY_COLUMN}", *hashes])
    unlogged = "UNLOGGED " if sql.name == "postgresql" else ""  # rebuilt, never recovered
    conn.execute(sa.text(f"CREATE {unlogged}TABLE {side} AS SELECT {select} "
                         f"FROM {sql.quote(table)}"))
    sums = [f"SUM({KEY_COLUMN})"] + [f"SUM({HASH_COLUMN.format(i)})"
                                     for i in range(len(columns))]
    row = conn.execute(sa.text(f"SELECT COUNT(*), {', '.join(sums)} FROM {side}")).one()
    return _aggregate_row(row, columns)


def drop_side(conn: Any, insp: Any) -> list[str]:
    """Drop every table ``capture`` kept (also those of an earlier, interrupted attempt)."""
    quote = conn.dialect.identifier_preparer.quote
    dropped = [t for t in insp.get_table_names() if is_side(t)]
    for table in dropped:
        conn.execute(sa.text(f"DROP TABLE {quote(table)}"))
    return dropped


def content_tables(insp: Any, bookkeeping: tuple[str, ...]) -> list[str]:
    return [t for t in sorted(insp.get_table_names()) if t not in bookkeeping and not is_side(t)]


def capture(engine: Any, bookkeeping: tuple[str, ...]) -> Json:
    """Aggregates of every content table, each table's hashes kept beside it for ``compare``."""
    sql = Sql(engine.dialect)
    tables: Json = {}
    with engine.begin() as conn:
        insp = sa.inspect(conn)
        drop_side(conn, insp)
        for table in content_tables(insp, bookkeeping):
            pk, columns = _layout(insp, table)
            if pk:
                figures = _keep(conn, sql, table, pk, columns)
            else:
                figures = _live_aggregates(conn, sql, table, pk, columns)
            tables[table] = {"pk": pk, "columns": columns, "kept": bool(pk), **figures}
    return {"dialect": engine.dialect.name, "tables": tables}


# --- after the migration ---------------------------------------------------------------------
def _differing(before: Json, after: Json) -> list[str]:
    """Columns (present before and after) whose sums differ."""
    return [c for c in before["columns"]
            if c in after["sums"] and before["sums"][c] != after["sums"][c]]


def _pk_join(sql: Sql, pk: list[str]) -> str:
    return " AND ".join(f"t.{sql.quote(c)} = s.{sql.quote(c)}" for c in pk)


def _examples(rows: Any) -> list[str]:
    """Keys as reports quote them: the value of a one-column key, else a JSON list."""
    out = []
    for row in rows:
        values = [str(v) for v in row]
        out.append(values[0] if len(values) == 1 else json.dumps(values))
    return out


def _lost(conn: Any, sql: Sql, table: str, pk: list[str], exists: bool) -> Json:
    side = sql.quote(side_name(table))
    where = (f"WHERE NOT EXISTS (SELECT 1 FROM {sql.quote(table)} t WHERE {_pk_join(sql, pk)})"
             if exists else "")
    order = ", ".join(f"s.{sql.quote(c)}" for c in pk)
    count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {side} s {where}")).scalar()
    keys = conn.execute(sa.text(sql.limit(
        f"SELECT {order} FROM {side} s {where} ORDER BY {order}", EXAMPLES))).all()
    return {"lost": int(count or 0), "lost_examples": _examples(keys)}


def _changed(conn: Any, sql: Sql, table: str, pk: list[str], columns: list[str],
             compared: list[str]) -> list[Json]:
    """Rows whose value changed in ``compared`` columns, grouped by which of them changed:
    per group the columns, the number of rows and a few keys."""
    side, live = sql.quote(side_name(table)), sql.quote(table)
    bits = " + ".join(
        f"(CASE WHEN {sql.cell(pk, c, 't')} <> s.{HASH_COLUMN.format(columns.index(c))} "
        f"THEN {1 << i} ELSE 0 END)" for i, c in enumerate(compared))
    keys = ", ".join(f"s.{sql.quote(c)} AS {sql.quote(c)}" for c in pk)
    order = ", ".join(sql.quote(c) for c in pk)
    joined = (f"SELECT {keys}, {bits} AS mask FROM {side} s JOIN {live} t "
              f"ON {_pk_join(sql, pk)}")
    ranked = (f"SELECT {order}, mask, COUNT(*) OVER (PARTITION BY mask) AS n, "
              f"ROW_NUMBER() OVER (PARTITION BY mask ORDER BY {order}) AS r "
              f"FROM ({joined}) j WHERE mask <> 0")
    rows = conn.execute(sa.text(f"SELECT * FROM ({ranked}) x WHERE r <= {EXAMPLES} "
                                f"ORDER BY mask, r")).all()
    groups: dict[int, Json] = {}
    for row in rows:
        *key, mask, count, _rank = row
        group = groups.setdefault(int(mask), {
            "columns": [c for i, c in enumerate(compared) if int(mask) >> i & 1],
            "rows": int(count), "examples": []})
        group["examples"] += _examples([key])
    return list(groups.values())


def _detail(conn: Any, sql: Sql, table: str, before: Json, after: Json | None) -> Json:
    """Lost and changed rows of a table whose aggregates differ, counted by joins in SQL."""
    pk = before["pk"]
    if not before.get("kept"):
        return {"note": "no primary key: compared by count and column sums only"}
    if after is None:
        return _lost(conn, sql, table, pk, exists=False)
    if after["pk"] != pk:
        return {"note": "primary key changed: rows compared by count only"}
    detail = _lost(conn, sql, table, pk, exists=True)
    compared = _differing(before, after)
    detail["changed"] = []
    for start in range(0, len(compared), MAX_MASK_COLUMNS):
        detail["changed"] += _changed(conn, sql, table, pk, before["columns"],
                                      compared[start:start + MAX_MASK_COLUMNS])
    return detail


def _same(before: Json, after: Json | None) -> bool:
    return after is not None and before["count"] == after["count"] and \
        before["keys"] == after["keys"] and not _differing(before, after)


def compare(engine: Any, before: Json, bookkeeping: tuple[str, ...]) -> Json:
    """Aggregates of every content table now, the detail of each table whose aggregates differ
    from ``before`` (what :func:`capture` returned), then the kept tables dropped."""
    sql = Sql(engine.dialect)
    tables: Json = {}
    detail: Json = {}
    with engine.begin() as conn:
        insp = sa.inspect(conn)
        for table in content_tables(insp, bookkeeping):
            old = before["tables"].get(table)
            pk, columns = _layout(insp, table)
            # the before key, when the table had one: sums are comparable only with the same key
            key = old["pk"] if old and old["pk"] and set(old["pk"]) <= set(columns) else pk
            tables[table] = {"pk": pk, "columns": columns,
                             **_live_aggregates(conn, sql, table, key, columns)}
        for table, old in before["tables"].items():
            if not _same(old, tables.get(table)):
                detail[table] = _detail(conn, sql, table, old, tables.get(table))
        dropped = drop_side(conn, insp)
    return {"dialect": engine.dialect.name, "tables": tables, "detail": detail,
            "dropped": len(dropped)}
