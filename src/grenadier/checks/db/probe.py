"""Look inside a Heat database with a release's own SQLAlchemy and alembic; print JSON.

A standalone script: grenadier never imports sqlalchemy, alembic or heat, so the database checks
run this file with a release venv's python::

    <release python> probe.py COMMAND SQLALCHEMY_URL [--out FILE] [--migrations DIR]
        [--before FILE]

A URL of ``-`` is read from the environment variable ``GRENADIER_PROBE_URL`` (a URL may hold a
password, and command lines are visible to every user and written to logs).

Commands: ``current`` (alembic versions stored in the DB), ``heads`` (the release's migration
scripts; the URL is not used), ``schema`` (reflected schema, normalised), ``compare-models``
(alembic's compare_metadata of the DB against ``heat.db.models``), ``capture-digests`` and
``compare-digests`` (per table: row count and content digests as SQL aggregates, computed by the
database; see ``probe_digests.py``), ``fingerprint`` (one checksum of the whole database's
schema and content). On failure it prints ``{"error": ...}`` and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import decimal
import hashlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

# This file sits beside grenadier modules; none of them may shadow what the release imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import sqlalchemy as sa  # type: ignore[import-not-found]  # noqa: E402

URL_ENV = "GRENADIER_PROBE_URL"
#: bookkeeping tables whose content changes on purpose during a migration
BOOKKEEPING = ("alembic_version", "migrate_version")
BATCH = 2000

Json = dict[str, Any]


def _load_digests() -> ModuleType:
    # by path: this directory is not on sys.path (see above)
    spec = importlib.util.spec_from_file_location(
        "grenadier_probe_digests", os.path.join(_HERE, "probe_digests.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


digests = _load_digests()


def _engine(url: str) -> Any:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    digests.register_functions(engine)
    return engine


def _heat_tables(names: list[str]) -> list[str]:
    """Table names without the tables capture-digests keeps beside Heat's."""
    return sorted(t for t in names if not digests.is_side(t))


# --- alembic revisions -------------------------------------------------------------------
def _migrations_dir(override: str | None) -> str:
    if override:
        return override
    # find_spec of the top-level package does not execute heat's code
    spec = importlib.util.find_spec("heat")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("heat is not installed in this python")
    return os.path.join(next(iter(spec.submodule_search_locations)), "db", "migrations")


def current(url: str, _args: argparse.Namespace) -> Json:
    from alembic.migration import MigrationContext  # type: ignore[import-not-found]

    engine = _engine(url)
    with engine.connect() as conn:
        versions = list(MigrationContext.configure(conn).get_current_heads())
        legacy = sa.inspect(conn).has_table("migrate_version")
    engine.dispose()
    return {"versions": sorted(versions), "legacy": legacy}


def heads(_url: str, args: argparse.Namespace) -> Json:
    from alembic.script import ScriptDirectory  # type: ignore[import-not-found]

    directory = _migrations_dir(args.migrations)
    script = ScriptDirectory(directory)
    revisions = []
    for rev in reversed(list(script.walk_revisions())):  # base first
        down = rev.down_revision
        revisions.append({
            "revision": rev.revision,
            "down_revision": list(down) if isinstance(down, tuple) else down,
            "title": (rev.doc or "").strip().splitlines()[0] if rev.doc else "",
            "path": rev.path,
        })
    return {"heads": sorted(script.get_heads()), "revisions": revisions, "directory": directory}


# --- schema --------------------------------------------------------------------------------
def _type(column: Json, dialect: Any) -> str:
    try:
        return str(column["type"].compile(dialect=dialect))
    except Exception:  # a type the dialect cannot render back: its repr still compares
        return repr(column["type"])


def _reflect_all(insp: Any) -> dict[str, dict[str, Any]]:
    """Every table's columns, keys and indexes; SQLAlchemy 2's get_multi_* when available
    (one query per kind on PostgreSQL instead of one per table and kind)."""
    tables = _heat_tables(insp.get_table_names())
    kinds = ("columns", "pk_constraint", "indexes", "unique_constraints", "foreign_keys")
    if hasattr(insp, "get_multi_columns"):
        return {kind: {key[1]: value
                       for key, value in getattr(insp, f"get_multi_{kind}")(
                           filter_names=tables).items()}
                for kind in kinds}
    return {kind: {t: getattr(insp, f"get_{kind}")(t) for t in tables} for kind in kinds}


def _table_schema(r: dict[str, dict[str, Any]], table: str, dialect: Any) -> Json:
    columns = {
        c["name"]: {"type": _type(c, dialect), "nullable": bool(c["nullable"]),
                    "default": None if c.get("default") is None else str(c["default"])}
        for c in r["columns"][table]
    }
    pk = r["pk_constraint"].get(table) or {}
    indexes = [{"name": i["name"], "columns": list(i["column_names"]), "unique": bool(i["unique"])}
               for i in r["indexes"].get(table, [])]
    uniques = [{"name": u["name"], "columns": list(u["column_names"])}
               for u in r["unique_constraints"].get(table, [])]
    fks = [{"name": f.get("name"), "columns": list(f["constrained_columns"]),
            "referred_table": f["referred_table"], "referred_columns": list(f["referred_columns"]),
            "ondelete": (f.get("options") or {}).get("ondelete")}
           for f in r["foreign_keys"].get(table, [])]
    return {"columns": columns, "primary_key": list(pk.get("constrained_columns") or []),
            "indexes": sorted(indexes, key=lambda i: (i["columns"], str(i["name"]))),
            "unique_constraints": sorted(uniques, key=lambda u: (u["columns"], str(u["name"]))),
            "foreign_keys": sorted(fks, key=lambda f: (f["columns"], str(f["name"])))}


def schema(url: str, _args: argparse.Namespace) -> Json:
    engine = _engine(url)
    with engine.connect() as conn:
        reflected = _reflect_all(sa.inspect(conn))
        tables = {t: _table_schema(reflected, t, engine.dialect)
                  for t in sorted(reflected["columns"])}
    engine.dispose()
    return {"dialect": engine.dialect.name, "tables": tables}


# --- models vs database --------------------------------------------------------------------
def _describe_diff(diff: Any) -> Json:
    """One of alembic's diff tuples as plain data: op, table, name, and readable text."""
    op = diff[0]
    if op in ("add_table", "remove_table"):
        return {"op": op, "table": diff[1].name, "name": diff[1].name, "detail": ""}
    if op in ("add_column", "remove_column"):
        column = diff[3]
        return {"op": op, "table": diff[2], "name": column.name,
                "detail": f"{column.type!r} nullable={column.nullable}"}
    if op.startswith("modify_"):
        _, _schema, table, column, _kw, old, new = diff
        return {"op": op, "table": table, "name": column, "detail": f"{old!r} -> {new!r}"}
    if op in ("add_index", "remove_index"):
        index = diff[1]
        cols = [getattr(c, "name", str(c)) for c in index.expressions]
        return {"op": op, "table": index.table.name, "name": index.name,
                "detail": f"columns={cols} unique={bool(index.unique)}"}
    if op in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        cols = [c.name for c in constraint.columns]
        kind = type(constraint).__name__
        return {"op": op, "table": constraint.table.name, "name": constraint.name,
                "detail": f"{kind} columns={cols}"}
    return {"op": str(op), "table": "", "name": "", "detail": repr(diff)}


def _flatten(diffs: list[Any]) -> Iterator[Any]:
    for diff in diffs:
        # modify_* diffs of one column come grouped in a list
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def compare_models(url: str, _args: argparse.Namespace) -> Json:
    from alembic.autogenerate import compare_metadata  # type: ignore[import-not-found]
    from alembic.migration import MigrationContext
    from heat.db import models  # type: ignore[import-not-found]

    engine = _engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, kind, _parent: kind != "table"
            or not digests.is_side(name)})
        diffs = compare_metadata(context, models.BASE.metadata)
    engine.dispose()
    described = [_describe_diff(d) for d in _flatten(diffs)]
    return {"dialect": engine.dialect.name,
            "diffs": [d for d in described if d["table"] not in BOOKKEEPING
                      and not digests.is_side(d["table"])]}


# --- content -------------------------------------------------------------------------------
def _canon(value: Any) -> str:
    """A value as text that is stable across drivers and SQLAlchemy versions."""
    if type(value) is str:  # the common case first: this runs for every cell
        return value
    if value is None:
        return "\x00"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b:" + bytes(value).hex()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _scan(conn: Any, table: sa.Table, pk: list[str]) -> Iterator[Any]:
    order = [table.c[c] for c in pk] or list(table.c)
    query = sa.select(table).order_by(*order)
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
    yield from result


def capture_digests(url: str, _args: argparse.Namespace) -> Json:
    engine = _engine(url)
    try:
        return digests.capture(engine, BOOKKEEPING)  # type: ignore[no-any-return]
    finally:
        engine.dispose()


def compare_digests(url: str, args: argparse.Namespace) -> Json:
    if not args.before:
        raise ValueError("compare-digests needs --before FILE (what capture-digests wrote)")
    with open(args.before, encoding="utf-8") as handle:
        before = json.load(handle)
    before = before.get("capture-digests", before)
    engine = _engine(url)
    try:
        return digests.compare(engine, before, BOOKKEEPING)  # type: ignore[no-any-return]
    finally:
        engine.dispose()


def fingerprint(url: str, args: argparse.Namespace) -> Json:
    whole = hashlib.sha256(json.dumps(schema(url, args), sort_keys=True).encode())
    engine = _engine(url)
    tables: dict[str, Json] = {}
    with engine.connect() as conn:
        insp = sa.inspect(conn)
        for name in _heat_tables(insp.get_table_names()):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            pk = list((insp.get_pk_constraint(name) or {}).get("constrained_columns") or [])
            digest = hashlib.sha256(name.encode())
            count = 0
            for row in _scan(conn, table, pk):
                digest.update(json.dumps([_canon(v) for v in row]).encode("utf-8", "surrogatepass"))
                count += 1
            tables[name] = {"count": count, "sha256": digest.hexdigest()}
            whole.update(f"{name}:{digest.hexdigest()}".encode())
    engine.dispose()
    return {"sha256": whole.hexdigest(), "tables": tables}


COMMANDS = {"current": current, "heads": heads, "schema": schema,
            "compare-models": compare_models, "capture-digests": capture_digests,
            "compare-digests": compare_digests, "fingerprint": fingerprint}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", help="one command, or several joined by commas: "
                        + ", ".join(sorted(COMMANDS)) + "; or serve (see _serve)")
    parser.add_argument("url")
    parser.add_argument("--out", help="write the JSON here; print only a summary")
    parser.add_argument("--migrations", help="heat's migrations directory (default: installed)")
    parser.add_argument("--before", help="compare-digests: the JSON capture-digests wrote")
    return parser


def answer(args: argparse.Namespace, url: str) -> tuple[Json, int]:
    """Run the commands of ``args``: what to print, and the exit code."""
    commands = args.command.split(",")
    try:
        # several commands in one call share the ~1 s it takes to import SQLAlchemy
        if len(commands) == 1:
            data = COMMANDS[commands[0]](url, args)
        else:
            data, seconds = {}, {}
            for command in commands:
                started = time.monotonic()
                data[command] = COMMANDS[command](url, args)
                seconds[command] = round(time.monotonic() - started, 3)
            data["seconds"] = seconds  # what each command took: at scale, where time goes
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}".strip()}, 1
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, separators=(",", ":")))
        found = [data.get(c, data) for c in ("capture-digests", "compare-digests")]
        tables: Json = next((d["tables"] for d in found if "tables" in d), {})
        data = {"out": args.out, "counts": {t: v.get("count") for t, v in tables.items()}}
    return data, 0


def _serve(parser: argparse.ArgumentParser) -> int:
    """Answer requests until stdin closes: one JSON line in (``argv``: the arguments of one
    call, ``url``), one JSON line out. Started ahead of time, a process has imported what
    the commands need (about a second of CPU) before it is asked anything."""
    import alembic.autogenerate  # type: ignore[import-not-found]
    import alembic.migration
    import alembic.script  # noqa: F401

    with contextlib.suppress(Exception):  # compare-models says so itself if this fails
        import heat.db.models  # type: ignore[import-not-found]  # noqa: F401
    for line in sys.stdin:
        request = json.loads(line)
        try:
            args = parser.parse_args(request["argv"])
        except SystemExit:
            data: Json = {"error": f"bad request: {request['argv']}"}
        else:
            data, _ = answer(args, request.get("url", ""))
        print(json.dumps(data, sort_keys=True), flush=True)
    return 0


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(parser)
    unknown = [c for c in args.command.split(",") if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown command(s): {', '.join(unknown)}")
    url = os.environ.get(URL_ENV, "") if args.url == "-" else args.url
    data, code = answer(args, url)
    print(json.dumps(data, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
