"""The database checks of the upgrade step: migration, schema-drift, data-preserved, upgrade-status.

Everything that needs SQLAlchemy, alembic or Heat runs in ``probe.py`` with a release's python;
this module only runs commands and turns what they print into findings. The parsing and the
comparisons are pure functions in ``compare.py``, tested on crafted JSON in
tests/unit/test_db_checks.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.db.compare import (
    Json,
    TableReport,
    applied_revisions,
    compare_digests,
    compare_schemas,
    migration_error,
    migration_ops,
    parse_upgrade_check,
    retyped_columns,
    revision_durations,
)
from grenadier.checks.db.fresh import (
    drop_fresh,
    fresh_schema,
    prepare_fresh_schema,
    prepared_fresh_schema,
)
from grenadier.checks.db.probing import BEFORE_FILE, COMPILE_OK, probe, shared_probe, work_dir
from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.model.findings import Finding
from grenadier.state import RUNNER

STATUS_TIMEOUT = 120.0
#: state-store namespace of these checks (small facts only; content digests go to files)
NAMESPACE = "db-checks"


def _reports_failures(name: str) -> Callable[[Callable[[CheckContext], list[Finding]]],
                                             Callable[[CheckContext], list[Finding]]]:
    """A check that cannot look at the database says so as a finding instead of crashing."""
    def decorate(fn: Callable[[CheckContext], list[Finding]]
                 ) -> Callable[[CheckContext], list[Finding]]:
        @functools.wraps(fn)
        def wrapper(ctx: CheckContext) -> list[Finding]:
            try:
                return fn(ctx)
            except EnvironmentProblem as exc:
                return [Finding(name, "error", f"{name} could not run", found=exc.one_line())]
        return wrapper
    return decorate


# --- migration -----------------------------------------------------------------------------
def _sync_log_text(ctx: CheckContext) -> str:
    text = ""
    if ctx.db_sync is not None:
        text = ctx.db_sync.out + "\n" + ctx.db_sync.err
    if "Running upgrade" not in text:
        # heat-manage sets up logging before reading --log-file, so stdout is the usual place
        log = ctx.deployment.logs / f"heat-manage-{ctx.target.version}.log"
        if log.is_file():
            text += log.read_text(encoding="utf-8", errors="replace")
    return text


def capture_version(ctx: CheckContext) -> None:
    """Record the alembic version(s) of the database before the target's db_sync."""
    current = shared_probe(ctx, "before", "migration")["current"]
    ctx.state.save(NAMESPACE, "version-before", current["versions"])


def _version_before(ctx: CheckContext) -> list[str] | None:
    value = ctx.state.get(NAMESPACE, "version-before")
    return [str(v) for v in value] if isinstance(value, list) else None


def snapshot_restore_hint(ctx: CheckContext) -> str:
    """How to put the pre-upgrade database back (the snapshot save-state took)."""
    command = ctx.state.get(RUNNER, "restore-command")
    if not command:
        return "no snapshot of the pre-upgrade database was taken (save-state did not run)"
    return f"restore the pre-upgrade database with: {command}"


def migration_failure(ctx: CheckContext) -> Finding:
    """The finding of a failed target db_sync: where it stopped, alembic's error, the restore."""
    assert ctx.db_sync is not None
    where, error = migration_error(ctx.db_sync)
    return Finding(
        "migration", "error", f"db_sync of the target {ctx.target.label} failed"
        + (f" in revision {where}" if where else ""),
        where=str(ctx.db_sync.request.log or ""), expected="exit code 0",
        found=f"exit {ctx.db_sync.returncode}: {error}",
        remedy=f"fix the migration; {snapshot_restore_hint(ctx)}")


@_reports_failures("migration")
def check_migration(ctx: CheckContext) -> list[Finding]:
    """The target's db_sync must succeed and leave the database at the target's alembic head.

    A deployer's first upgrade failure is a database that does not migrate; the revisions
    applied, with their titles and durations, tell them what the upgrade changed and how long
    the control plane must stay down for it.
    """
    # the upgrade step reports a failed db_sync itself (migration_failure), selected or not
    assert ctx.db_sync is not None, "post-migration check before db_sync"
    assert ctx.db_sync.ok, "post-migration check after a failed db_sync"
    data = shared_probe(ctx, "after", "migration")
    current, heads = data["current"]["versions"], data["heads"]["heads"]
    findings = []
    if sorted(current) != sorted(heads):
        findings.append(Finding(
            "migration", "error", "the database is not at the target release's alembic head",
            where="alembic_version", expected=", ".join(heads), found=", ".join(current) or "none",
            remedy=f"run {ctx.target.venv / 'bin' / 'heat-manage'} db_sync and read its output"))
    before = _version_before(ctx)
    if before is None:
        before = probe(ctx, ctx.base, "heads", timeout=120)["heads"]
    durations = revision_durations(_sync_log_text(ctx))
    applied = [{"revision": r["revision"], "down_revision": r["down_revision"],
                "title": r["title"], "duration_s": durations.get(r["revision"])}
               for r in applied_revisions(data["heads"]["revisions"], before, heads)]
    ctx.facts["revisions"] = applied
    ctx.facts["db_version"] = {"before": before, "after": current}
    lines = [f"{r['revision']} {r['title']!r} ({_secs(r['duration_s'])})" for r in applied]
    findings.append(Finding("migration", "info", f"{len(applied)} revision(s) applied",
                            where=f"{', '.join(before) or 'empty'} -> {', '.join(current)}",
                            found="; ".join(lines) or "none"))
    return findings


def _secs(value: float | None) -> str:
    return "duration unknown" if value is None else f"{value:.3f} s"


# --- schema-drift --------------------------------------------------------------------------
_MODEL_DIFFS = {
    "add_table": "table {name} of the models is missing from the database",
    "remove_table": "table {name} is in the database but not in the models",
    "add_column": "column {table}.{name} of the models is missing from the database",
    "remove_column": "column {table}.{name} is in the database but not in the models",
    "modify_type": "column {table}.{name} has another type in the database than in the models",
    "modify_nullable": "column {table}.{name} differs in nullability from the models",
    "add_index": "index {name} on {table} of the models is missing from the database",
    "remove_index": "index {name} on {table} is in the database but not in the models",
    "add_constraint": "constraint {name} on {table} of the models is missing from the database",
    "remove_constraint": "constraint {name} on {table} is in the database but not in the models",
    "add_fk": "foreign key {name} on {table} of the models is missing from the database",
    "remove_fk": "foreign key {name} on {table} is in the database but not in the models",
}


def model_findings(diffs: list[Json], target: str) -> list[Finding]:
    """compare_metadata's diffs (as probe.py describes them) as findings."""
    findings = []
    for diff in diffs:
        text = _MODEL_DIFFS.get(diff["op"], "{op} on {table} {name}")
        findings.append(Finding(
            "schema-drift", "error", text.format(**diff), where=f"table {diff['table']}",
            expected=f"the SQLAlchemy models of {target}", found=f"{diff['op']} {diff['detail']}",
            remedy="add a migration that makes the schema match the models (or fix the models)"))
    return findings


def _inspect_beside_fresh(ctx: CheckContext) -> tuple[Json, Json]:
    """The migrated database's models diff and schema, and a fresh database's schema."""
    try:
        # the fresh database is built while the migrated one is inspected: both take seconds
        with ThreadPoolExecutor(max_workers=1) as pool:
            fresh = pool.submit(fresh_schema, ctx)
            data = shared_probe(ctx, "after", "schema-drift")
            return data, fresh.result()
    finally:
        # on a --db-url server it would stay behind, a stray database in someone else's server
        # (the pool has finished with it: leaving the with block waits for the thread)
        drop_fresh(ctx)


@_reports_failures("schema-drift")
def check_schema_drift(ctx: CheckContext) -> list[Finding]:
    """The migrated schema must equal the target's models and a freshly created schema.

    Migrations and models are written separately: a model column without a migration, or a
    migration that builds an index another way than a fresh install, only shows on a database
    that really went through the upgrade. Names of tables, columns, types, indexes and
    constraints are compared, so a drift names what differs.
    """
    fresh_data = prepared_fresh_schema(ctx)  # built during shutdown, when it could be
    if fresh_data is None:
        data, fresh_data = _inspect_beside_fresh(ctx)
    else:
        data = shared_probe(ctx, "after", "schema-drift")
    findings = model_findings(data["compare-models"]["diffs"], ctx.target.label)
    for diff in compare_schemas(data["schema"], fresh_data):
        findings.append(Finding(
            "schema-drift", diff.severity,
            f"{diff.kind} {diff.name} of table {diff.table} differs from a fresh "
            f"{ctx.target.label} database", where=f"table {diff.table}",
            expected=diff.expected, found=diff.found,
            remedy="make the migrations produce what a fresh db_sync creates"))
    return findings


# --- data-preserved ------------------------------------------------------------------------
def data_findings(reports: list[TableReport], revisions: str) -> list[Finding]:
    findings = []
    for r in reports:
        if r.lost:
            findings.append(Finding(
                "data-preserved", "error", f"{r.lost} of {r.before} rows of table {r.table} lost",
                where=f"table {r.table}", expected=f"all {r.before} rows still present",
                found=f"{r.after} rows after the migration; lost keys e.g. "
                      f"{', '.join(r.lost_examples)}" + (f" ({r.note})" if r.note else ""),
                remedy=f"find the statement deleting rows in the applied migrations: {revisions}"))
        if r.changed or r.changed_columns:
            findings.append(_changed_finding(r, revisions))
        if r.dropped_columns:
            findings.append(Finding(
                "data-preserved", "error",
                f"columns of table {r.table} vanished: {', '.join(r.dropped_columns)}",
                where=f"table {r.table}", expected="no column dropped without op.drop_column",
                found="absent after the migration", remedy="check the applied migrations"))
    return findings


def _changed_finding(r: TableReport, revisions: str) -> Finding:
    if r.changed:
        columns = ", ".join(f"{c} ({n})" for c, n in sorted(r.changed_columns.items()))
        what = f"values changed in {r.changed} rows of table {r.table}: {columns}"
        found = f"changed keys e.g. {', '.join(r.changed_examples)}"
    else:  # no row detail: the columns' digests differ, which rows is unknown
        what = f"values changed in table {r.table}: {', '.join(sorted(r.changed_columns))}"
        found = f"the columns' content digests differ ({r.note or 'no row detail'})"
    return Finding(
        "data-preserved", "error", what, where=f"table {r.table}",
        expected="values unchanged outside columns the migrations alter "
                 f"({', '.join(r.deliberate) or 'none'})", found=found,
        remedy=f"find the statement rewriting them in the applied migrations: {revisions}")


def _before_file(ctx: CheckContext) -> Path:
    return work_dir(ctx) / BEFORE_FILE


def capture_digests(ctx: CheckContext) -> None:
    """Record version, schema and the content digests of every table before the migration
    (the database keeps each table's row hashes beside it until the check has compared)."""
    shared_probe(ctx, "before", "data-preserved")
    ctx.state.save(NAMESPACE, "digests-before", str(_before_file(ctx)))


@_reports_failures("data-preserved")
def check_data_preserved(ctx: CheckContext) -> list[Finding]:
    """Every row present before the migration must still be there, its values unchanged.

    Migrations run on real, populated databases; a migration that deletes or rewrites rows is
    invisible on the empty databases migrations are usually tested on. Only the columns an
    applied migration alters, adds, drops or updates (read from its upgrade()) may change.
    Row counts and content digests are compared per table by the database itself (SQL
    aggregates); rows are looked at only in a table whose digests differ, to count and name them.
    """
    path = _before_file(ctx)
    if not path.is_file():
        return [Finding("data-preserved", "warning", "no data captured before the migration",
                        where=str(path), remedy="run the upgrade step with this check selected")]
    before = json.loads(path.read_text(encoding="utf-8"))
    after = shared_probe(ctx, "after", "data-preserved")
    applied = applied_revisions(after["heads"]["revisions"], before["current"]["versions"],
                                after["heads"]["heads"])
    ops = migration_ops(Path(r["path"]).read_text(encoding="utf-8") for r in applied)
    reports = compare_digests(before["capture-digests"], after["compare-digests"], ops,
                              retyped_columns(before["schema"], after["schema"]))
    ctx.facts["data"] = {r.table: asdict(r) for r in reports}
    return data_findings(reports, ", ".join(r["revision"] for r in applied) or "none")


# --- upgrade-status ------------------------------------------------------------------------
STATUS_SEVERITY = {"success": None, "warning": "warning", "failure": "error"}


@_reports_failures("upgrade-status")
def check_upgrade_status(ctx: CheckContext) -> list[Finding]:
    """The target's own ``heat-status upgrade check`` must not report a failure.

    It is Heat's statement of what a deployment must change before running the new release
    (for example a JSON policy file); warnings are reported, failures fail the run.
    """
    config = [arg for path in ctx.project.config_files(ctx.deployment)
              for arg in ("--config-file", str(path))]
    cmd = [str(ctx.target.bin("heat-status")), *config, "upgrade", "check"]
    outcome = run(ExecuteRequest(cmd, timeout=STATUS_TIMEOUT, unset_env=COMPILE_OK,
                                 log=ctx.deployment.logs / "heat-status.log"))
    results = parse_upgrade_check(outcome.out)
    ctx.facts["upgrade-status"] = results
    if outcome.timed_out or outcome.returncode not in (0, 1, 2) or not results:
        return [Finding("upgrade-status", "error", "heat-status upgrade check did not complete",
                        where=str(outcome.request.log), expected="exit 0, 1 or 2 with a table",
                        found=f"exit {outcome.returncode}: {outcome.last_error_line()}")]
    findings = []
    for result in results:
        severity = STATUS_SEVERITY.get(result.get("result", "").lower(), "error")
        if severity:
            findings.append(Finding(
                "upgrade-status", severity, f"heat-status: {result.get('check', '?')}: "
                f"{result.get('result', '?')}", where=f"heat-status upgrade check "
                f"({ctx.target.label})", expected="Success", found=result.get("result", ""),
                remedy=result.get("details", "")))
    return findings


# each only runs release processes and writes its own files and facts: they run side by side
DB_CHECKS = [
    Check("migration", "post-migration", check_migration, capture=capture_version,
          concurrent=True),
    Check("schema-drift", "post-migration", check_schema_drift, prepare=prepare_fresh_schema,
          concurrent=True),
    Check("data-preserved", "post-migration", check_data_preserved, capture=capture_digests,
          concurrent=True),
    Check("upgrade-status", "post-migration", check_upgrade_status, concurrent=True),
]
