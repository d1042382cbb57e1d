"""Crafted situations for the built-in Heat suite's detectors, applied from inside a real run.

This file is a grenadier *user test module*: tests/e2e/test_suite_detectors.py copies it, as
``test_tamper.py``, into a directory of its own next to a ``scenario.json`` and passes that
directory to ``grenadier run --tests``. Its tests are marked ``during_upgrade``, so they run in
the real during-upgrade phase: every Heat service down, Heat's database up, in a pytest process
of their own beside the built-in suite's during-upgrade watch. The crafting waits for the
upgrade step to end, so what it changes is seen by the target release only, and by none of the
upgrade step's own database checks. The SQL is run by the base release venv's Python (it has
SQLAlchemy and the driver), found in the run's ``db.json`` like the built-in suite does.

Scenarios (``scenario.json``: ``{"scenario": NAME, "config": PATH}``):

``tampered``
    One crafted situation per post-upgrade check (see :func:`tampered_steps`), each on the
    stack that check operates on; the read-only checks (shown, outputs, resources) compare
    every stack, so they also see what the others' crafting changed. And
    ``max_nested_stack_depth = 0`` written into the run's ``--config`` file: the target
    release reads it, the base release never did (it also makes Heat list resources without
    nested ones and refuse updates of stacks with nested stacks: collateral in the resources
    and parameter-update checks, which fail here anyway).
``vanished``
    Once the built-in watch has finished a pass (it saw every row), one resource row is deleted
    and another resource's physical id emptied, in one transaction, by a thread started when
    this module is imported. After the upgrade step both are put back exactly as
    they were, so only the during-upgrade detector sees them. Then one stack is tagged with a
    tag the target's config hides from stack lists.

What was done is written to ``crafted.json`` beside this file, for the e2e test to compare with
what the built-in tests reported.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from grenadier.execute import ExecuteRequest, run
from grenadier.plugins.heat.suite import catalog
from grenadier.pytest_plugin import (
    Connection,
    DbInfo,
    UpgradeState,
    discover,
    namespace_for,
    wait_for_watch,
)
from grenadier.state.store import StateStore

HERE = Path(__file__).resolve().parent
SCENARIO_FILE = "scenario.json"
RESULT_FILE = "crafted.json"
#: the built-in suite's state-store namespace: what its pre-upgrade test recorded
SUITE_NAMESPACE = namespace_for("test_heat_upgrade.py")
#: the built-in during-upgrade watch (its test id contains this): the vanishing waits until it
#: has finished this many passes, so that it saw the rows before they vanish
BUILTIN_WATCH = "test_heat_upgrade.py"
WATCH_PASSES = 2
#: the tag that hides a stack from the target's stack list (``hidden_stack_tags``)
HIDDEN_TAG = "grenadier-hidden"
#: what a crafted WaitCondition handle carries instead of the signal sent before the upgrade
FAILURE_SIGNAL = {"pre": {"status": "FAILURE", "reason": "crafted failure", "data": "pre"}}
#: the upgrade step has ended well before this (it takes about 20 s)
UPGRADE_WAIT = 600.0

Step = dict[str, Any]
Record = dict[str, Any]

# Run by the base release's Python. Steps run in one transaction:
#   sql     a statement; ``rows`` (default 1) is the row count it must change, None for any
#   stash   save the rows a SELECT * of ``table`` WHERE ``where`` finds (appended to ``file``)
#   unstash insert back, in the order they were stashed, the rows saved in ``file``
DB_SCRIPT = r"""
import json, pickle, sys
from datetime import datetime, timezone
import sqlalchemy as sa

def now():
    return datetime.now(timezone.utc).isoformat()

req = json.load(sys.stdin)
engine = sa.create_engine(req["url"])
meta = sa.MetaData()
counts = []
started = now()
with engine.begin() as conn:
    for step in req["steps"]:
        params = step.get("params", {})
        if step["kind"] == "sql":
            count = conn.execute(sa.text(step["sql"]), params).rowcount
            wanted = step.get("rows", 1)
            if wanted is not None and count != wanted:
                sys.exit(f"{step['what']}: {count} row(s) changed, expected {wanted}")
        elif step["kind"] == "stash":
            rows = [dict(r._mapping) for r in conn.execute(
                sa.text(f"SELECT * FROM {step['table']} WHERE {step['where']}"), params)]
            with open(step["file"], "ab") as handle:
                pickle.dump((step["table"], rows), handle)
            count = len(rows)
        elif step["kind"] == "unstash":
            count = 0
            with open(step["file"], "rb") as handle:
                while True:
                    try:
                        table, rows = pickle.load(handle)
                    except EOFError:
                        break
                    if rows:
                        conn.execute(sa.Table(table, meta, autoload_with=conn).insert(), rows)
                    count += len(rows)
        else:
            sys.exit(f"unknown step kind {step['kind']!r}")
        counts.append(count)
print(json.dumps({"started": started, "committed": now(), "counts": counts}))
"""


def run_db_steps(db: DbInfo, steps: list[Step]) -> dict[str, Any]:
    """Apply ``steps`` to Heat's DB in one transaction; when it began and was committed (UTC)."""
    outcome = run(ExecuteRequest(cmd=[db.python, "-c", DB_SCRIPT], timeout=120,
                                 stdin=json.dumps({"url": db.url, "steps": steps})))
    if not outcome.ok:
        raise AssertionError(f"crafting Heat's DB failed: {outcome.err.strip() or outcome.out}")
    result: dict[str, Any] = json.loads(outcome.out)
    return result


def sql(what: str, statement: str, *, rows: int | None = 1, **params: Any) -> Step:
    return {"kind": "sql", "what": what, "sql": statement, "rows": rows, "params": params}


def scenario() -> dict[str, Any]:
    path = HERE / SCENARIO_FILE
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data


def suite_records(conn: Connection) -> dict[str, Record]:
    """The built-in suite's pre-upgrade records, by stack key (params, group, ...)."""
    assert conn.state_path is not None, "no state store: not run by grenadier"
    saved = UpgradeState(StateStore(conn.state_path), SUITE_NAMESPACE).all()
    records: dict[str, Record] = {spec.key: saved.get(f"stack:{spec.key}")
                                  for spec in catalog.SPECS}
    missing = [key for key, rec in records.items() if not rec]
    assert not missing, f"the built-in suite recorded no stack {missing}"
    return records


def physical_id(rec: Record, resource: str) -> str:
    return str(rec["resources"][f"{rec['name']}/{resource}"]["physical_resource_id"])


def write_result(key: str, value: Any) -> None:
    path = HERE / RESULT_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")


def write_config(text: str) -> None:
    """Rewrite the run's ``--config`` file: read by the target's services when they start."""
    path = Path(scenario()["config"])
    path.write_text(f"# written by {Path(__file__).name} after the upgrade step\n{text}",
                    encoding="utf-8")


def wait_upgrade_done(conn: Connection) -> None:
    deadline = time.monotonic() + UPGRADE_WAIT
    while not conn.upgrade_done():
        assert time.monotonic() < deadline, "the upgrade step did not end"
        time.sleep(0.5)


# -- the post-upgrade checks, each broken on its own stack ------------------------------------

def tampered_steps(recs: dict[str, Record]) -> list[Step]:
    """One crafted situation per post-upgrade check (the e2e test asserts each message)."""
    params, retain, suspended = recs["params"], recs["retain"], recs["suspended"]
    kept = physical_id(retain, "kept")  # the nested stack deletion_policy Retain keeps
    kept_random = str(retain["outputs"]["kept_out"]["value"]).split("-", 1)[1]
    template_of = "(SELECT raw_template_id FROM stack WHERE id = :stack)"
    return [
        # shown: a column of the stack row flipped, on the stack no other check here breaks
        # (its show is compared, its status and outputs are not: see test_heat_upgrade.py)
        sql("shown", "UPDATE stack SET disable_rollback = :value WHERE id = :stack",
            stack=recs["in_progress"]["id"],
            value=not recs["in_progress"]["show"]["disable_rollback"]),
        # update with a parameter change: the stored template makes `echo` fail on update
        sql("parameter update", f"UPDATE raw_template SET template = replace(template, :old, "
            f":new) WHERE id = {template_of} AND template LIKE :like", stack=params["id"],
            old='"fail": false', new='"fail": true', like='%"fail": false%'),
        # outputs: the retained child's RandomString value, and the attribute values Heat
        # cached from it (outputs are served from that cache)
        sql("outputs", "UPDATE resource_data SET value = 'TAMPER', redact = :no "
            "WHERE key = 'value' AND resource_id = "
            "(SELECT id FROM resource WHERE stack_id = :stack AND name = 'random')",
            stack=kept, no=False),
        sql("outputs (cache)", "UPDATE resource_properties_data SET data = "
            "replace(data, :old, 'TAMPER') WHERE data LIKE :like AND id IN "
            "(SELECT attr_data_id FROM resource WHERE stack_id IN (:stack, :kept))",
            rows=None, stack=retain["id"], kept=kept, old=kept_random,
            like=f"%{kept_random}%"),
        # resources: a status reason rewritten
        sql("resources", "UPDATE resource SET status_reason = 'crafted reason' "
            "WHERE stack_id = :stack AND name = 'marker'", stack=suspended["id"]),
        # suspend / resume: the suspended stack's nested-stack resource lost its physical id
        sql("resume", "UPDATE resource SET nova_instance = NULL "
            "WHERE stack_id = :stack AND name = 'child'", stack=suspended["id"]),
        # template change: `first` marked FAILED, so the update replaces it
        sql("template update", "UPDATE resource SET status = 'FAILED' "
            "WHERE stack_id = :stack AND name = 'first'", stack=recs["evolve"]["id"]),
        # WaitCondition signal: the handle carries a FAILURE signal
        sql("signal", "UPDATE resource SET rsrc_metadata = :meta "
            "WHERE stack_id = :stack AND name = 'handle'", stack=recs["wait_condition"]["id"],
            meta=json.dumps(FAILURE_SIGNAL)),
        # stack check: a ResourceGroup member lost its physical id
        sql("check", "UPDATE resource SET nova_instance = NULL "
            "WHERE stack_id = :stack AND name = '0'", stack=recs["group"]["nested_stack_ids"][0]),
        # no stack IN_PROGRESS: a stack marked UPDATE_IN_PROGRESS that no engine works on
        sql("in progress", "UPDATE stack SET action = 'UPDATE', status = 'IN_PROGRESS' "
            "WHERE id = :stack", stack=recs["nested"]["id"]),
        # delete: a software deployment still references the stack's SoftwareConfig
        sql("delete", "INSERT INTO software_deployment (id, config_id, server_id, input_values, "
            "output_values, tenant, action, status, status_reason, created_at) "
            "SELECT :id, :config, :server, '{}', '{}', tenant, 'CREATE', 'COMPLETE', "
            "'crafted deployment', CURRENT_TIMESTAMP FROM stack WHERE id = :stack",
            stack=recs["software_config"]["id"], id=str(uuid.uuid4()), server=str(uuid.uuid4()),
            config=recs["software_config"]["db"]["software_configs"][0]),
        # delete, Retain: the stored deletion policy is now Delete
        sql("retain", f"UPDATE raw_template SET template = replace(template, :old, :new) "
            f"WHERE id = {template_of} AND template LIKE :like", stack=retain["id"],
            old='"deletion_policy": "Retain"', new='"deletion_policy": "Delete"',
            like='%"deletion_policy": "Retain"%'),
    ]


# -- rows vanishing while the built-in watch runs -------------------------------------------

def vanish_targets(recs: dict[str, Record]) -> dict[str, str]:
    """The resource row deleted, and the resource whose physical id is emptied."""
    return {"stack": recs["evolve"]["id"], "resource": "second",
            "pid_stack": recs["params"]["id"], "pid_resource": "echo",
            "pid": physical_id(recs["params"], "echo")}


def vanish_steps(target: dict[str, str], stash: Path) -> list[Step]:
    row = "stack_id = :stack AND name = :name"
    where: dict[str, Any] = {"stack": target["stack"], "name": target["resource"]}
    data = f"resource_id IN (SELECT id FROM resource WHERE {row})"
    return [
        {"kind": "stash", "table": "resource", "where": row, "params": where, "file": str(stash)},
        {"kind": "stash", "table": "resource_data", "where": data, "params": where,
         "file": str(stash)},
        sql("vanish data", f"DELETE FROM resource_data WHERE {data}", rows=None, **where),
        sql("vanish", f"DELETE FROM resource WHERE {row}", **where),
        sql("empty physical id", "UPDATE resource SET nova_instance = NULL "
            "WHERE stack_id = :stack AND name = :name",
            stack=target["pid_stack"], name=target["pid_resource"]),
    ]


def restore_steps(target: dict[str, str], stash: Path) -> list[Step]:
    return [
        {"kind": "unstash", "file": str(stash)},
        sql("restore physical id", "UPDATE resource SET nova_instance = :pid "
            "WHERE stack_id = :stack AND name = :name",
            stack=target["pid_stack"], name=target["pid_resource"], pid=target["pid"]),
    ]


class Vanisher(threading.Thread):
    """Deletes the rows once the built-in during-upgrade watch (in its own process) has
    finished :data:`WATCH_PASSES` passes over Heat's DB: while it watches."""

    def __init__(self) -> None:
        super().__init__(name="vanisher", daemon=True)
        self.imported = time.monotonic()
        self.stash = HERE / "vanished.pickle"
        self.result: dict[str, Any] = {}
        self.error = ""

    def run(self) -> None:
        try:
            conn = discover()
            assert conn.db is not None, "Heat's DB is unknown (no db.json)"
            target = vanish_targets(suite_records(conn))
            self.stash.unlink(missing_ok=True)
            wait_for_watch(conn, BUILTIN_WATCH, passes=WATCH_PASSES)
            done = run_db_steps(conn.db, vanish_steps(target, self.stash))
            self.result = {**target, "started": done["started"], "committed": done["committed"],
                           "after_import": round(time.monotonic() - self.imported, 1)}
        # reported by test_rows_vanished_while_watched (pytest.fail's exception is no Exception)
        except (Exception, pytest.fail.Exception) as exc:
            self.error = f"{type(exc).__name__}: {exc}"


VANISHER: Vanisher | None = None
if os.environ.get("GRENADIER_PHASE") == "during-upgrade" and \
        scenario().get("scenario") == "vanished":
    VANISHER = Vanisher()
    VANISHER.start()


# -- the tests ---------------------------------------------------------------------------

@pytest.mark.during_upgrade
def test_rows_vanished_while_watched() -> None:
    """The vanishing (done by the thread) happened while the upgrade step ran."""
    if VANISHER is None:
        pytest.skip("scenario without vanishing rows")
    VANISHER.join(120)
    assert not VANISHER.is_alive(), "the vanisher thread did not end"
    assert not VANISHER.error, VANISHER.error
    write_result("vanished", VANISHER.result)


@pytest.mark.during_upgrade
def test_craft(grenadier_connection: Connection) -> None:
    """After the upgrade step, with Heat still down: the scenario's crafted situations."""
    name = scenario().get("scenario")
    db = grenadier_connection.db
    assert db is not None, "Heat's DB is unknown (no db.json)"
    recs = suite_records(grenadier_connection)
    wait_upgrade_done(grenadier_connection)
    write_result("upgrade_done", datetime.now(timezone.utc).isoformat())
    if name == "tampered":
        steps = tampered_steps(recs)
        run_db_steps(db, steps)
        write_config("[DEFAULT]\nmax_nested_stack_depth = 0\n")
        write_result("crafted", [step["what"] for step in steps])
    elif name == "vanished":
        assert VANISHER is not None, "no vanisher in this scenario"
        assert VANISHER.result, "nothing vanished to restore"
        hidden = recs["software_config"]["id"]
        run_db_steps(db, [
            *restore_steps(VANISHER.result, VANISHER.stash),
            sql("listed", "INSERT INTO stack_tag (tag, stack_id, created_at) "
                "VALUES (:tag, :stack, CURRENT_TIMESTAMP)", tag=HIDDEN_TAG, stack=hidden),
        ])
        write_config(f"[DEFAULT]\nhidden_stack_tags = {HIDDEN_TAG}\n")
        write_result("crafted", ["restored", "listed"])
    else:
        pytest.fail(f"unknown scenario {name!r} in {HERE / SCENARIO_FILE}")
