"""schema-drift's reference: the schema the target's own db_sync creates in an empty database.

It depends neither on the run's data nor on Heat being down, so ``prepare_fresh_schema`` can
build it while shutdown waits for Heat to stop (seconds in which the machine is idle) and keep it
in a file; the check uses that file, or builds the schema itself when there is none.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
from pathlib import Path

from grenadier.checks.api import CheckContext
from grenadier.checks.db.compare import Json
from grenadier.checks.db.probing import COMPILE_OK, DB_SYNC_TIMEOUT, probe, work_dir
from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import write_atomic, write_private

FRESH_DB = "heat_fresh"
PREPARED = "fresh-schema.json"


def _fresh_conf(ctx: CheckContext, url: str) -> Path:
    """A copy of the run's heat.conf whose [database] connection is the fresh database."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read(ctx.project.config_files(ctx.deployment)[0], encoding="utf-8")
    if not parser.has_section("database"):
        parser.add_section("database")
    parser.set("database", "connection", url)
    # beside heat.conf: it holds the same password, and etc/ is where the run keeps secrets
    path = ctx.deployment.etc / "heat-fresh.conf"
    text = io.StringIO()
    parser.write(text)
    write_private(path, text.getvalue())
    return path


def fresh_schema(ctx: CheckContext) -> Json:
    """The schema the target's own db_sync creates in an empty database."""
    db = ctx.deployment.db
    db.create_database(FRESH_DB)
    conf = _fresh_conf(ctx, db.url(FRESH_DB))
    cmd = [str(ctx.target.bin("heat-manage")), "--config-file", str(conf), "db_sync"]
    log = ctx.deployment.logs / f"db_sync-fresh-{ctx.target.version}.log"
    run(ExecuteRequest(cmd, timeout=DB_SYNC_TIMEOUT, log=log, unset_env=COMPILE_OK)).assert_success(
        f"db_sync of {ctx.target.label} into an empty database")
    return probe(ctx, ctx.target, "schema", db.url(FRESH_DB))


def drop_fresh(ctx: CheckContext) -> None:
    """Drop the fresh database; a failure to do so is said in the log, not raised, so that
    it never hides the check's own result or error."""
    try:
        ctx.deployment.db.drop_database(FRESH_DB)
    except EnvironmentProblem as exc:
        with contextlib.suppress(OSError), \
                (ctx.deployment.logs / "db-probe.log").open("a", encoding="utf-8") as log:
            log.write(f"# could not drop {FRESH_DB}: {exc.one_line()}\n")


def _identity(ctx: CheckContext) -> dict[str, str]:
    """What a kept schema was built with: only the same target on the same kind of database
    may use it (a resumed run could in principle point elsewhere)."""
    return {"target": ctx.target.label, "venv": str(ctx.target.venv),
            "database": ctx.deployment.db.kind}


def prepare_fresh_schema(ctx: CheckContext) -> None:
    """Build the fresh schema ahead of the upgrade step and keep it in a file; the fresh
    database itself is dropped at once (on a --db-url server it must not stay behind)."""
    try:
        schema = fresh_schema(ctx)
    finally:
        drop_fresh(ctx)
    write_atomic(work_dir(ctx) / PREPARED, json.dumps({"for": _identity(ctx), "schema": schema}))


def prepared_fresh_schema(ctx: CheckContext) -> Json | None:
    """The schema ``prepare_fresh_schema`` kept for this target, or None."""
    try:
        data = json.loads((work_dir(ctx) / PREPARED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("for") != _identity(ctx):
        return None
    schema = data.get("schema")
    return schema if isinstance(schema, dict) else None
