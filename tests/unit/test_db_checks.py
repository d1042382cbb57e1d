"""The database checks' parsing and comparison logic, on crafted JSON, logs and scripts.

No database and no Heat: probe.py's output is crafted here in the shape it prints (the real
thing is exercised by tests/e2e/test_db_real.py).
"""

from __future__ import annotations

import copy
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from grenadier.checks.api import CheckContext, CheckRegistry
from grenadier.checks.db import DB_CHECKS, checks, probing, snapshot_restore_hint
from grenadier.checks.db.checks import data_findings, model_findings
from grenadier.checks.db.compare import (
    MigrationOps,
    applied_revisions,
    compare_digests,
    compare_schemas,
    migration_error,
    migration_ops,
    parse_upgrade_check,
    retyped_columns,
    revision_durations,
)
from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.execute import ExecuteRequest, Outcome
from grenadier.plugins.heat.project import HeatProject
from grenadier.project.api import Deployment
from grenadier.releases.release import Release
from grenadier.services import mariadb
from grenadier.services.external import ExternalDatabase
from grenadier.services.sqlite import SqliteDatabase
from grenadier.state import StateStore

Json = dict[str, Any]

SYNC_LOG = """\
2026-11-26 05:57:44.695 10108 INFO heat.db.migration [-] Applying migration(s)
2026-11-26 05:57:44.698 10108 INFO alembic.runtime.migration [-] Context impl SQLiteImpl.
2026-11-26 05:57:44.703 10108 INFO alembic.runtime.migration [-] Running upgrade c6214ca60943 \
-> d2db381e3324, Add extra_data column to sync_point table
2026-11-26 05:57:44.705 10108 INFO alembic.runtime.migration [-] Running upgrade d2db381e3324 \
-> 88be64598c0f, Add resource_snapshot table
2026-11-26 05:57:44.707 10108 INFO alembic.runtime.migration [-] Running upgrade 88be64598c0f \
-> 97b2a986f922, make snapshot state aware
2026-11-26 05:57:45.719 10108 INFO heat.db.migration [-] Migration(s) applied
"""

REVISIONS = [
    {"revision": "c6214ca60943", "down_revision": None, "title": "Initial revision"},
    {"revision": "d2db381e3324", "down_revision": "c6214ca60943", "title": "Add extra_data"},
    {"revision": "88be64598c0f", "down_revision": "d2db381e3324", "title": "Add snapshot"},
    {"revision": "97b2a986f922", "down_revision": "88be64598c0f", "title": "state aware"},
]


# --- migration -------------------------------------------------------------------------------
def test_revision_durations_from_the_alembic_log() -> None:
    assert revision_durations(SYNC_LOG) == {
        "d2db381e3324": 0.002, "88be64598c0f": 0.002, "97b2a986f922": 1.012}


def test_revision_durations_without_a_following_line_are_unknown() -> None:
    last = SYNC_LOG.splitlines()[4]
    assert revision_durations(last) == {}


def test_applied_revisions_from_the_base_head_to_the_target_head() -> None:
    applied = applied_revisions(REVISIONS, ["c6214ca60943"], ["97b2a986f922"])
    assert [r["revision"] for r in applied] == ["d2db381e3324", "88be64598c0f", "97b2a986f922"]
    assert applied_revisions(REVISIONS, ["97b2a986f922"], ["97b2a986f922"]) == []
    assert len(applied_revisions(REVISIONS, [], ["97b2a986f922"])) == 4


def test_applied_revisions_follow_both_sides_of_a_merge() -> None:
    revisions = [*REVISIONS,
                 {"revision": "b1", "down_revision": "97b2a986f922", "title": "b1"},
                 {"revision": "b2", "down_revision": "97b2a986f922", "title": "b2"},
                 {"revision": "m", "down_revision": ["b1", "b2"], "title": "merge"}]
    applied = applied_revisions(revisions, ["97b2a986f922"], ["m"])
    assert [r["revision"] for r in applied] == ["b1", "b2", "m"]


def _outcome(out: str, err: str, rc: int = 1) -> Outcome:
    return Outcome(ExecuteRequest(["heat-manage", "db_sync"], log=Path("/run/logs/x.log")),
                   rc, out, err, 0.0, 3.0)


def test_migration_error_names_the_revision_and_alembic_error() -> None:
    out = SYNC_LOG.splitlines()[2] + "\n"
    err = "some warning\nERROR: crafted migration failure\n"
    where, error = migration_error(_outcome(out, err))
    assert where == "c6214ca60943 -> d2db381e3324 (Add extra_data column to sync_point table)"
    assert error == "crafted migration failure"


def test_migration_error_without_log_lines_uses_the_last_error_line() -> None:
    outcome = _outcome("", "Traceback\nValueError: boom\n")
    assert migration_error(outcome) == ("", "ValueError: boom")


# --- fake context ----------------------------------------------------------------------------
@pytest.fixture
def ctx(tmp_path: Path) -> CheckContext:
    release = Release("26.0.2", "26.0.2", tmp_path / "venv", "pypi")
    deployment = Deployment(tmp_path, SqliteDatabase(tmp_path), 8004)
    return CheckContext(tmp_path, Release("25.0.2", "25.0.2", tmp_path / "venv25", "pypi"),
                        release, HeatProject(), deployment, StateStore(tmp_path / "state.json"))


def test_restore_hint_uses_the_snapshot_of_save_state(ctx: CheckContext) -> None:
    assert "no snapshot" in snapshot_restore_hint(ctx)
    ctx.state.save("runner", "restore-command", "cp a b")
    assert snapshot_restore_hint(ctx) == "restore the pre-upgrade database with: cp a b"


def test_a_failed_db_sync_names_revision_error_and_restore(ctx: CheckContext) -> None:
    ctx.state.save("runner", "restore-command", "cp snap heat.sqlite")
    ctx.db_sync = _outcome(SYNC_LOG.splitlines()[3], "ERROR: boom\n")
    finding = checks.migration_failure(ctx)
    assert finding.severity == "error"
    assert "88be64598c0f" in finding.what
    assert finding.found == "exit 1: boom"
    assert finding.remedy.endswith("cp snap heat.sqlite")


def test_migration_check_lists_revisions_and_catches_a_missing_head(
        ctx: CheckContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_probe(_ctx: CheckContext, _release: Release, commands: str, *_: Any,
                   **__: Any) -> Json:
        assert commands == "current,heads"
        return {"current": {"versions": ["88be64598c0f"]},
                "heads": {"heads": ["97b2a986f922"], "revisions": REVISIONS}}

    monkeypatch.setattr(probing, "probe", fake_probe)
    ctx.state.save(checks.NAMESPACE, "version-before", ["c6214ca60943"])
    ctx.db_sync = _outcome(SYNC_LOG, "", rc=0)
    findings = checks.check_migration(ctx)
    assert [f.severity for f in findings] == ["error", "info"]
    assert findings[0].expected == "97b2a986f922"
    assert findings[0].found == "88be64598c0f"
    revisions = ctx.facts["revisions"]
    assert [r["duration_s"] for r in revisions] == [0.002, 0.002, 1.012]  # type: ignore[union-attr]
    assert "'state aware' (1.012 s)" in findings[1].found


def test_the_selected_checks_share_one_probe_and_fall_back_to_their_own(
        ctx: CheckContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """One Python for the migration, schema-drift and data-preserved reads after db_sync; a
    failure of that joint read leaves each check to read for itself (and fail alone)."""
    calls: list[str] = []
    broken = {"compare-digests"}

    def fake_probe(_ctx: CheckContext, _release: Release, commands: str, *_: Any,
                   **__: Any) -> Json:
        calls.append(commands)
        if broken & set(commands.split(",")):
            raise probing.ProbeFailed(f"probe {commands}: boom")
        return {c: {"read": c} for c in commands.split(",")}

    monkeypatch.setattr(probing, "probe", fake_probe)
    ctx.selected = ("migration", "schema-drift", "upgrade-status")
    assert probing.shared_probe(ctx, "after", "migration") == {
        "current": {"read": "current"}, "heads": {"read": "heads"},
        "compare-models": {"read": "compare-models"}, "schema": {"read": "schema"}}
    probing.shared_probe(ctx, "after", "schema-drift")
    assert calls == ["current,heads,compare-models,schema"]  # data-preserved captured nothing
    (probing.work_dir(ctx) / probing.BEFORE_FILE).write_text("{}")
    ctx.selected, ctx.shared, calls[:] = ("migration", "schema-drift", "data-preserved"), {}, []
    assert "compare-models" in probing.shared_probe(ctx, "after", "schema-drift")
    assert calls == ["current,heads,compare-models,schema,compare-digests",
                     "compare-models,schema"]
    with pytest.raises(probing.ProbeFailed):
        probing.shared_probe(ctx, "after", "data-preserved")
    assert calls[2:] == ["heads,schema,compare-digests"]  # its own read, and its own failure


FAKE_PROBE = """
import json, os, sys
with open(os.path.join(os.path.dirname(sys.argv[0]), "starts"), "a") as starts:
    starts.write(" ".join(sys.argv[1:3]) + "\\n")
def answer(argv, url):
    if argv[0] == "die":
        sys.exit(3)
    return {"asked": argv[0], "url": url} if argv[0] != "broken" else {"error": "boom"}
if sys.argv[2] == "serve":
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(answer(request["argv"], request["url"])), flush=True)
else:
    print(json.dumps(answer(sys.argv[2:], os.environ["GRENADIER_PROBE_URL"])))
"""


def test_a_warm_probe_server_answers_every_probe_and_a_dead_one_is_replaced(
        ctx: CheckContext) -> None:
    """The target's probes, started ahead (while the captures and db_sync run), cost a
    request each, not a Python start; if the server dies, a probe runs on its own."""
    python = ctx.target.python
    python.parent.mkdir(parents=True)
    (python.parent / "fake_probe.py").write_text(FAKE_PROBE)
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {python.parent / 'fake_probe.py'} "
                      '"$@"\n')
    python.chmod(0o755)
    ctx.selected = ("schema-drift",)
    probing.warm(ctx, "before")  # no selected check probes before the migration: no server
    assert "servers" not in ctx.shared
    probing.warm(ctx, "after")
    try:
        assert probing.probe(ctx, ctx.target, "schema", "url-1") == {"asked": "schema",
                                                                      "url": "url-1"}
        assert probing.probe(ctx, ctx.target, "heads")["asked"] == "heads"
        with pytest.raises(probing.ProbeFailed, match="boom"):
            probing.probe(ctx, ctx.target, "broken")
        starts = (python.parent / "starts").read_text().splitlines()
        assert starts == [f"{probing.PROBE} serve"]  # one Python for all three
        with pytest.raises(probing.ProbeFailed):
            probing.probe(ctx, ctx.target, "die", timeout=30)  # the server, then alone
        assert probing.probe(ctx, ctx.target, "schema", "url-2")["url"] == "url-2"
        assert (python.parent / "starts").read_text().splitlines()[1:] == [
            f"{probing.PROBE} die", f"{probing.PROBE} schema"]
    finally:
        servers = dict(ctx.shared.get("servers") or {})  # type: ignore[call-overload]
        probing.close_servers(ctx)
    assert all(server.proc is None for server in servers.values())


def test_a_probe_failure_is_a_finding_not_a_crash(
        ctx: CheckContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Json:
        raise probing.ProbeFailed("probe schema with 26.0.2: OperationalError: no such db")

    monkeypatch.setattr(probing, "probe", broken)
    (finding,) = checks.check_schema_drift(ctx)
    assert finding.what == "schema-drift could not run"
    assert "no such db" in finding.found


# --- schema-drift ----------------------------------------------------------------------------
def _schema() -> Json:
    return {"dialect": "postgresql", "tables": {"stack": {
        "columns": {"id": {"type": "VARCHAR(36)", "nullable": False, "default": None},
                    "name": {"type": "VARCHAR(255)", "nullable": True, "default": None}},
        "primary_key": ["id"],
        "indexes": [{"name": "ix_stack_name", "columns": ["name"], "unique": False}],
        "unique_constraints": [],
        "foreign_keys": [{"name": "stack_ibfk_1", "columns": ["raw_template_id"],
                          "referred_table": "raw_template", "referred_columns": ["id"],
                          "ondelete": None}]}}}


def test_identical_schemas_have_no_drift() -> None:
    assert compare_schemas(_schema(), _schema()) == []


def test_schema_drift_names_table_column_type_and_index() -> None:
    migrated, fresh = _schema(), _schema()
    fresh["tables"]["stack"]["columns"]["owner"] = {"type": "VARCHAR(36)", "nullable": True}
    migrated["tables"]["stack"]["columns"]["name"]["type"] = "TEXT"
    migrated["tables"]["stack"]["indexes"] = []
    fresh["tables"]["event"] = copy.deepcopy(fresh["tables"]["stack"])
    diffs = {(d.table, d.kind, d.name, d.expected, d.found) for d in
             compare_schemas(migrated, fresh)}
    assert diffs == {
        ("event", "table", "event", "present", "missing"),
        ("stack", "column", "owner", "VARCHAR(36)", "missing"),
        ("stack", "column type", "name", "VARCHAR(255)", "TEXT"),
        ("stack", "index", "ix_stack_name", "name", "missing"),
    }


def test_a_renamed_index_is_a_warning_naming_both_names() -> None:
    migrated = _schema()
    migrated["tables"]["stack"]["indexes"][0]["name"] = "stack_name_idx"
    (diff,) = compare_schemas(migrated, _schema())
    assert (diff.kind, diff.severity, diff.expected, diff.found) == (
        "index name", "warning", "ix_stack_name", "stack_name_idx")


def test_a_changed_foreign_key_is_drift() -> None:
    migrated = _schema()
    migrated["tables"]["stack"]["foreign_keys"][0]["ondelete"] = "CASCADE"
    kinds = sorted((d.kind, d.found) for d in compare_schemas(migrated, _schema()))
    assert kinds == [("foreign key", "(raw_template_id) -> raw_template(id) ondelete=CASCADE"),
                     ("foreign key", "missing")]


def test_model_findings_name_the_column() -> None:
    (finding,) = model_findings([{"op": "add_column", "table": "stack", "name": "grenadier_drift",
                                  "detail": "String(length=36) nullable=True"}], "26.0.2")
    assert finding.what == "column stack.grenadier_drift of the models is missing from the database"
    assert finding.severity == "error"


# --- data-preserved --------------------------------------------------------------------------
MIGRATION_97B2 = textwrap.dedent('''
    from alembic import op
    import sqlalchemy as sa

    def upgrade():
        op.add_column('snapshot', sa.Column('action', sa.String(255), nullable=True))
        connection = op.get_bind()
        snapshot_table = sa.Table('snapshot', sa.MetaData(), autoload_with=connection)
        op.execute(snapshot_table.update().where(
            snapshot_table.c.action.is_(None)).values({'action': 'CREATE'}))

    def downgrade():
        op.drop_column('snapshot', 'action')
        op.drop_column('stack', 'name')
''')

MIGRATION_MISC = textwrap.dedent('''
    from alembic import op

    def upgrade():
        op.alter_column('resource', 'status_reason', type_=sa.Text())
        with op.batch_alter_table('event') as batch_op:
            batch_op.drop_column('resource_properties')
        op.execute("UPDATE stack SET status = 'FAILED', status_reason='x' WHERE id = 1")
        op.execute("DELETE FROM event")
        op.drop_table('old_table')
''')


def test_migration_ops_read_what_upgrade_changes() -> None:
    ops = migration_ops([MIGRATION_97B2, MIGRATION_MISC])
    assert ops.changed == {"snapshot": {"action"}, "resource": {"status_reason"},
                           "event": {"resource_properties"},
                           "stack": {"status", "status_reason"}}
    assert ops.dropped_tables == {"old_table"}


COLUMNS = ("id", "name", "status")


def _figures(count: int, sums: tuple[str, ...] = ("1", "2", "3"), keys: str = "9",
             columns: tuple[str, ...] = COLUMNS, pk: tuple[str, ...] = ("id",),
             table: str = "stack") -> Json:
    """probe.py's digests of one table: count, key sum, per-column sums (SQL aggregates)."""
    return {"tables": {table: {"pk": list(pk), "columns": list(columns), "kept": bool(pk),
                               "count": count, "keys": keys,
                               "sums": dict(zip(columns, sums, strict=True))}}}


def _after(figures: Json, **detail: Json) -> Json:
    """compare-digests: the figures after, and the row detail of tables that differ."""
    return {**figures, "detail": detail}


def test_unchanged_tables_are_clean() -> None:
    (report,) = compare_digests(_figures(2), _after(_figures(2)), MigrationOps(), {})
    assert (report.before, report.after, report.lost, report.changed) == (2, 2, 0, 0)
    assert data_findings([report], "r1") == []


def test_lost_rows_are_counted_with_examples_from_the_database() -> None:
    after = _after(_figures(1, keys="1"), stack={
        "lost": 9, "lost_examples": ["1", "2", "3"], "changed": []})
    (report,) = compare_digests(_figures(10), after, MigrationOps(), {})
    assert (report.lost, report.lost_examples) == (9, ["1", "2", "3"])
    (finding,) = data_findings([report], "0de1e7e5ba5e")
    assert finding.what == "9 of 10 rows of table stack lost"
    assert "lost keys e.g. 1, 2, 3" in finding.found
    assert "0de1e7e5ba5e" in finding.remedy


def test_changed_values_name_columns_unless_a_migration_changed_them() -> None:
    # per set of changed columns: how many rows, and a few keys
    groups = [{"columns": ["name", "status"], "rows": 1, "examples": ["1"]},
              {"columns": ["status"], "rows": 1, "examples": ["2"]}]
    after = _after(_figures(2, sums=("1", "X", "Y")), stack={
        "lost": 0, "lost_examples": [], "changed": groups})
    (report,) = compare_digests(_figures(2), after, MigrationOps(), {})
    assert (report.changed, report.changed_columns) == (2, {"name": 1, "status": 2})
    assert report.changed_examples == ["1", "2"]
    (finding,) = data_findings([report], "r1")
    assert finding.what == "values changed in 2 rows of table stack: name (1), status (2)"
    ops = MigrationOps(changed={"stack": {"status"}})
    (report,) = compare_digests(_figures(2), after, ops, {})
    assert (report.changed, report.changed_columns) == (1, {"name": 1})
    (report,) = compare_digests(_figures(2), after, ops, {"stack": {"name"}})
    assert report.changed == 0
    assert report.deliberate == ["name", "status"]


def test_new_columns_and_rows_are_not_findings() -> None:
    after = _after(_figures(2, sums=("1", "2", "3", "4"), keys="10",
                            columns=(*COLUMNS, "action")),
                   stack={"lost": 0, "lost_examples": [], "changed": []})
    assert data_findings(compare_digests(_figures(1), after, MigrationOps(), {}), "r") == []


def test_a_dropped_table_or_column_without_a_migration_is_reported() -> None:
    after = _after(_figures(1, sums=("1", "2"), columns=("id", "name")))
    (report,) = compare_digests(_figures(1), after, MigrationOps(), {})
    assert report.dropped_columns == ["status"]
    gone = {"tables": {}, "detail": {"stack": {"lost": 1, "lost_examples": ["7"]}}}
    (report,) = compare_digests(_figures(1), gone, MigrationOps(), {})
    assert (report.lost, report.lost_examples) == (1, ["7"])
    assert compare_digests(_figures(1), gone, MigrationOps(dropped_tables={"stack"}), {}) == []


def test_without_row_detail_the_figures_still_fire() -> None:
    """A table without a primary key (no rows kept): lost by count, changed by column sums."""
    before = _figures(3, pk=())
    note = {"note": "no primary key: compared by count and column sums only"}
    (report,) = compare_digests(before, _after(_figures(2, pk=(), keys="8"), stack=note),
                                MigrationOps(), {})
    assert report.lost == 1
    (report,) = compare_digests(before, _after(_figures(3, ("1", "2", "Z"), pk=()), stack=note),
                                MigrationOps(), {})
    (finding,) = data_findings([report], "r1")
    assert finding.what == "values changed in table stack: status"
    assert "no primary key" in finding.found


def test_retyped_columns_may_change() -> None:
    before, after = _schema(), _schema()
    after["tables"]["stack"]["columns"]["name"]["type"] = "TEXT"
    assert retyped_columns(before, after) == {"stack": {"name"}}


def test_data_preserved_end_to_end_on_crafted_probe_output(
        ctx: CheckContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "97b2a986f922_make_snapshot_state_aware.py"
    script.write_text(MIGRATION_97B2)
    revisions = [{**r, "path": str(script)} for r in REVISIONS]
    before = {"current": {"versions": ["88be64598c0f"]}, "schema": _schema(),
              "capture-digests": _figures(2)}
    before_file = probing.work_dir(ctx) / "digests-before.json"
    before_file.write_text(json.dumps(before))
    after = {"heads": {"heads": ["97b2a986f922"], "revisions": revisions},
             "schema": _schema(), "compare-digests": _after(
                 _figures(1, keys="4"), stack={"lost": 1, "lost_examples": ["2"]})}
    calls = []

    def fake_probe(_ctx: CheckContext, _release: Release, commands: str, _url: str,
                   *args: str, **__: Any) -> Json:
        calls.append((commands, args[args.index("--before") + 1]))
        Path(args[args.index("--out") + 1]).write_text(json.dumps(after))
        return {}

    monkeypatch.setattr(probing, "probe", fake_probe)
    (finding,) = checks.check_data_preserved(ctx)
    assert finding.what == "1 of 2 rows of table stack lost"
    assert finding.remedy.endswith("97b2a986f922")
    assert ctx.facts["data"]["stack"]["lost_examples"] == ["2"]  # type: ignore[index]
    # the database compares what it kept at capture: the probe is given the capture's file
    assert calls == [("heads,schema,compare-digests", str(before_file))]


def test_data_preserved_without_capture_warns(ctx: CheckContext) -> None:
    (finding,) = checks.check_data_preserved(ctx)
    assert finding.severity == "warning"


# --- upgrade-status --------------------------------------------------------------------------
STATUS_FAILURE = """\
+----------------------------------------------------------------------+
| Upgrade Check Results                                                |
+----------------------------------------------------------------------+
| Check: Policy File JSON to YAML Migration                            |
| Result: Failure                                                      |
| Details: Your policy file is JSON-formatted which is deprecated. You |
|   need to switch to YAML-formatted file. Use the                     |
|   ``oslopolicy-convert-json-to-yaml`` tool to convert the            |
|   existing JSON-formatted files to YAML in a backwards-              |
|   compatible manner.                                                 |
+----------------------------------------------------------------------+
| Check: Something else                                                |
| Result: Warning                                                      |
| Details: None                                                        |
+----------------------------------------------------------------------+
"""


def test_parse_upgrade_check_joins_wrapped_details() -> None:
    first, second = parse_upgrade_check(STATUS_FAILURE)
    assert first["check"] == "Policy File JSON to YAML Migration"
    assert first["result"] == "Failure"
    assert first["details"].endswith("YAML in a backwards-compatible manner.")
    assert second == {"check": "Something else", "result": "Warning", "details": "None"}


def test_upgrade_status_maps_results_to_severities(ctx: CheckContext) -> None:
    bin_dir = ctx.target.venv / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "heat-status"
    (bin_dir / "table.txt").write_text(STATUS_FAILURE)
    fake.write_text(f"#!/bin/sh\ncat {bin_dir / 'table.txt'}\nexit 2\n")
    fake.chmod(0o755)
    findings = checks.check_upgrade_status(ctx)
    assert [f.severity for f in findings] == ["error", "warning"]
    assert "oslopolicy-convert-json-to-yaml" in findings[0].remedy
    fake.write_text("#!/bin/sh\necho Traceback >&2\nexit 255\n")
    (finding,) = checks.check_upgrade_status(ctx)
    assert finding.what == "heat-status upgrade check did not complete"


# --- registry and services -------------------------------------------------------------------
def test_db_checks_are_named_documented_and_selectable() -> None:
    registry = CheckRegistry()
    for check in DB_CHECKS:
        registry.add(check)
        assert check.why, check.name
        assert check.step == "post-migration"
    assert registry.names() == ["data-preserved", "migration", "schema-drift", "upgrade-status"]
    assert [c.name for c in registry.select(skip=["schema-drift"])] == [
        "migration", "data-preserved", "upgrade-status"]
    with pytest.raises(UsageError):
        registry.select(only=["schema-drfit"])


def test_mariadb_without_the_package_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(mariadb, "SBIN_DIRS", ())
    with pytest.raises(EnvironmentProblem) as info:
        mariadb.MariaDB(tmp_path).start(None)  # type: ignore[arg-type]
    assert "install mariadb-server" in info.value.one_line()


def test_mariadb_credentials_are_private_and_stable(tmp_path: Path) -> None:
    first = mariadb.MariaDB(tmp_path)
    assert (tmp_path / "db" / "mariadb.json").stat().st_mode & 0o777 == 0o600
    assert mariadb.MariaDB(tmp_path).url() == first.url()
    assert first.url().startswith("mysql+pymysql://heat:")
    assert first.url("heat_fresh").split("?")[0].endswith("/heat_fresh")


@pytest.mark.parametrize(("url", "backend", "heat_url"), [
    ("postgresql://u:p@db:5433/heat", "postgresql", "postgresql+psycopg2://u:p@db:5433/heat"),
    ("mysql://u:p@db/heat?charset=utf8", "mysql", "mysql+pymysql://u:p@db/heat?charset=utf8"),
    ("mysql+pymysql://u@db/h", "mysql", "mysql+pymysql://u@db/h"),
    ("postgresql+psycopg2://postgres@/heat?host=/tmp/s", "postgresql",
     "postgresql+psycopg2://postgres@/heat?host=/tmp/s"),
])
def test_external_urls(tmp_path: Path, url: str, backend: str, heat_url: str) -> None:
    db = ExternalDatabase(tmp_path, url)
    assert (db.backend, db.url()) == (backend, heat_url)
    assert db.url("heat_fresh").split("?")[0].endswith("/heat_fresh")
    assert ":p@" not in db.restore_command(Path("/snap.sql"))


def test_external_rejects_other_databases(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        ExternalDatabase(tmp_path, "oracle://u@db/heat")
    db = ExternalDatabase(tmp_path, "postgresql://u@db/heat")
    with pytest.raises(UsageError):
        db.create_database("heat")
