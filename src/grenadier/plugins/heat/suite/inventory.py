"""What the suite records about a stack before the upgrade, and how it compares after.

A record is plain JSON (it goes into the state store): the stack as shown, its outputs, its
resources down to nested stacks, its template, and the DB rows that must survive the upgrade.
Differences are reported field by field, one line each.
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from grenadier.execute import ExecuteRequest
from grenadier.execute.run import end_helper, popen
from grenadier.services.connection import DbInfo
from grenadier.services.heat_client import HeatClient, StackRef, stack_id_from_links

#: fields of `stack show` that an upgrade must not change on a stack nobody touched
SHOW_FIELDS = ("id", "stack_name", "description", "parameters", "disable_rollback",
               "timeout_mins", "tags", "parent", "creation_time", "stack_status",
               "stack_status_reason")
#: fields of a resource that an upgrade must not change on a stack nobody touched
RESOURCE_FIELDS = ("resource_type", "physical_resource_id", "resource_status",
                   "resource_status_reason", "required_by")
NESTED_DEPTH = 3
MAX_DIFF_LINES = 40


def _stack_of(resource: Mapping[str, Any]) -> tuple[str, str]:
    """(stack name, stack id) that ``resource`` belongs to, from its links."""
    for link in resource.get("links", []):
        if link.get("rel") == "stack":
            name, stack_id = str(link["href"]).rstrip("/").rsplit("/", 2)[-2:]
            return name, stack_id
    raise ValueError(f"resource {resource.get('resource_name')} has no stack link")


def resource_view(resources: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resources keyed ``<stack name>/<resource name>``, with the fields that must not change."""
    view: dict[str, dict[str, Any]] = {}
    for res in resources:
        stack_name, _ = _stack_of(res)
        fields = {k: res.get(k) for k in RESOURCE_FIELDS}
        fields["required_by"] = sorted(fields["required_by"] or [])
        view[f"{stack_name}/{res['resource_name']}"] = fields
    return view


def output_view(outputs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for out in outputs:
        entry = {"value": out.get("output_value")}
        if out.get("output_error"):
            entry["error"] = out["output_error"]
        view[str(out["output_key"])] = entry
    return view


def show_view(stack: Mapping[str, Any]) -> dict[str, Any]:
    return {k: stack.get(k) for k in SHOW_FIELDS}


def record(heat: HeatClient, key: str, ref: StackRef) -> dict[str, Any]:
    """Everything post-upgrade compares against, and during-upgrade looks for in the DB."""
    stack = heat.get_stack(ref)
    resources = heat.list_resources(ref, nested_depth=NESTED_DEPTH)
    rows = []
    for res in resources:
        _, stack_id = _stack_of(res)
        rows.append([stack_id, res["resource_name"], res.get("physical_resource_id") or ""])
    nested = sorted({stack_id_from_links(r.get("links", []), "nested") or "" for r in resources}
                    - {""})
    configs = [r["physical_resource_id"] for r in resources
               if r.get("resource_type") == "OS::Heat::SoftwareConfig"]
    return {
        "key": key, "name": ref.name, "id": ref.id,
        "show": show_view(stack),
        "outputs": output_view(heat.outputs(ref)),
        "resources": resource_view(resources),
        "template": heat.template(ref),
        "nested_stack_ids": nested,
        "db": {"stacks": [ref.id, *nested], "resources": rows, "software_configs": configs},
    }


def ref_of(rec: Mapping[str, Any]) -> StackRef:
    return StackRef(str(rec["name"]), str(rec["id"]))


def diff(expected: Any, found: Any, path: str = "") -> list[str]:
    """Differences between two JSON values, one line per differing leaf."""
    if isinstance(expected, dict) and isinstance(found, dict):
        lines: list[str] = []
        for key in sorted(set(expected) | set(found), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in found:
                lines.append(f"{where}: missing (was {_short(expected[key])})")
            elif key not in expected:
                lines.append(f"{where}: new (is {_short(found[key])})")
            else:
                lines += diff(expected[key], found[key], where)
        return lines
    if expected != found:
        return [f"{path or '(value)'}: expected {_short(expected)}, found {_short(found)}"]
    return []


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff_report(what: str, ref: StackRef, lines: list[str]) -> str:
    shown = lines[:MAX_DIFF_LINES]
    more = len(lines) - len(shown)
    text = "\n".join(f"    {line}" for line in shown)
    return f"{what} of stack {ref} changed across the upgrade:\n{text}" + (
        f"\n    ... and {more} more" if more else "")


# -- Heat's DB, read directly while Heat is down ------------------------------------------

# Run with the release venv's Python (it has SQLAlchemy and the DB driver): grenadier itself
# never imports heat or sqlalchemy. One process answers every pass of a watch, one request
# (a JSON line) at a time: a pass costs a query, not the second it takes a Python to import
# SQLAlchemy. It ends when its stdin closes (the watch ended, or its process died).
DB_QUERY = r"""
import json, sys
import sqlalchemy as sa
engines = {}
def rows(conn, sql, ids):
    q = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    return [list(r) for r in conn.execute(q, {"ids": ids})]
for line in sys.stdin:
    req = json.loads(line)
    try:
        if req["url"] not in engines:
            engines[req["url"]] = sa.create_engine(req["url"], poolclass=sa.pool.NullPool)
        with engines[req["url"]].connect() as conn:
            out = {
                "stacks": rows(conn, "SELECT id, name, action, status, deleted_at IS NOT NULL"
                               " FROM stack WHERE id IN :ids", req["stacks"]),
                "resources": rows(conn, "SELECT stack_id, name, nova_instance, action, status"
                                  " FROM resource WHERE stack_id IN :ids", req["stacks"]),
                "software_configs": rows(conn, "SELECT id FROM software_config WHERE id IN :ids",
                                         req["software_configs"]),
            }
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out, default=str), flush=True)
"""


def expected_rows(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The rows every recorded stack must keep: stacks, resources, software configs."""
    merged: dict[str, list[Any]] = {"stacks": [], "resources": [], "software_configs": []}
    for rec in records:
        for kind in merged:
            merged[kind] += rec["db"][kind]
    return merged


class DbReader:
    """Reads the rows of ``expected`` from Heat's DB, pass after pass, with one release Python
    (started on the first pass, again after a failure); stop it with :meth:`close`."""

    def __init__(self, db: DbInfo, timeout: float = 30.0) -> None:
        self.db = db
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = popen(ExecuteRequest([self.db.python, "-c", DB_QUERY],
                                             env={"PYTHONWARNINGS": "ignore"}),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, bufsize=1)
        return self.proc

    def query(self, expected: Mapping[str, list[Any]]) -> Any:
        """The rows of ``expected`` that Heat's DB holds now (AssertionError on failure)."""
        request = {"url": self.db.url, "stacks": expected["stacks"],
                   "software_configs": expected["software_configs"]}
        proc = self._start()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout)
            line = proc.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError) as exc:
            line = json.dumps({"error": f"the query process ended: {exc}"})
        if not line:
            self.close()  # timed out or died: the next pass starts a new one
            raise AssertionError(f"cannot read Heat's {self.db.kind} DB: no answer within "
                                 f"{self.timeout:.0f} s")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"cannot read Heat's {self.db.kind} DB: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc is not None:
            end_helper(self.proc)
            self.proc = None

    def __enter__(self) -> DbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vanished(expected: Mapping[str, list[Any]], found: Mapping[str, list[Any]]) -> list[str]:
    """What ``expected`` has that the DB no longer has, one line each."""
    live = {row[0] for row in found["stacks"] if not row[4]}
    rows = {row[0] for row in found["stacks"]}  # a set once, not once per missing stack
    lines = [f"stack row {sid} is gone" + (" (soft-deleted)" if sid in rows else "")
             for sid in expected["stacks"] if sid not in live]
    # convergence may keep several rows per resource name (a replacement and what it replaces)
    have: dict[tuple[str, str], set[str]] = {}
    for row in found["resources"]:
        have.setdefault((row[0], row[1]), set()).add(row[2] or "")
    for stack_id, name, physical in expected["resources"]:
        if (stack_id, name) not in have:
            lines.append(f"resource row {name} of stack {stack_id} is gone")
        elif physical and physical not in have[(stack_id, name)]:
            now = ", ".join(sorted(p or "empty" for p in have[(stack_id, name)]))
            lines.append(f"resource {name} of stack {stack_id}: physical id was {physical}, "
                         f"is {now}")
    configs = {row[0] for row in found["software_configs"]}
    lines += [f"software_config row {cid} is gone"
              for cid in expected["software_configs"] if cid not in configs]
    return lines
