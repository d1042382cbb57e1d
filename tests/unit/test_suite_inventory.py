"""The built-in suite's detectors on crafted data: the DB watch (`vanished`) and the
post-upgrade comparison (`diff`) fire on each kind of loss or change, and stay quiet otherwise."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from grenadier.plugins.heat.suite import inventory
from grenadier.services.connection import DbInfo
from grenadier.services.heat_client import StackRef

Rows = dict[str, list[Any]]

#: what two recorded stacks (one with a nested stack) must keep
EXPECTED: Rows = {
    "stacks": ["s1", "s2", "s2-child"],
    "resources": [["s1", "random", "s1-random"], ["s2", "child", "s2-child"],
                  ["s2-child", "value", ""], ["s1", "config", "c1"]],
    "software_configs": ["c1"],
}


def found_rows() -> Rows:
    """Heat's DB as a DbReader reads it when nothing was lost."""
    return {
        # id, name, action, status, soft-deleted
        "stacks": [["s1", "one", "CREATE", "COMPLETE", False],
                   ["s2", "two", "CREATE", "COMPLETE", False],
                   ["s2-child", "two-child", "CREATE", "COMPLETE", False]],
        # stack id, name, physical id (nova_instance), action, status
        "resources": [["s1", "random", "s1-random", "CREATE", "COMPLETE"],
                      ["s2", "child", "s2-child", "CREATE", "COMPLETE"],
                      ["s2-child", "value", None, "CREATE", "COMPLETE"],
                      ["s1", "config", "c1", "CREATE", "COMPLETE"]],
        "software_configs": [["c1"]],
    }


def test_nothing_lost_is_quiet() -> None:
    assert inventory.vanished(EXPECTED, found_rows()) == []


def test_a_replacement_row_beside_the_original_is_quiet() -> None:
    # convergence keeps the resource being replaced and its replacement: two rows, one name
    found = found_rows()
    found["resources"].append(["s1", "random", "s1-random-new", "UPDATE", "IN_PROGRESS"])
    assert inventory.vanished(EXPECTED, found) == []


def _without(rows: list[Any], key: Any) -> list[Any]:
    return [row for row in rows if row[: len(key)] != key]


def _gone_stack(found: Rows) -> None:
    found["stacks"] = _without(found["stacks"], ["s2-child"])


def _soft_deleted(found: Rows) -> None:
    found["stacks"][1][4] = True


def _gone_resource(found: Rows) -> None:
    found["resources"] = _without(found["resources"], ["s2", "child"])


def _changed_physical_id(found: Rows) -> None:
    found["resources"][0][2] = "other"


def _emptied_physical_id(found: Rows) -> None:
    found["resources"][0][2] = None


def _gone_config(found: Rows) -> None:
    found["software_configs"] = []


@pytest.mark.parametrize(("craft", "line"), [
    (_gone_stack, "stack row s2-child is gone"),
    (_soft_deleted, "stack row s2 is gone (soft-deleted)"),
    (_gone_resource, "resource row child of stack s2 is gone"),
    (_changed_physical_id, "resource random of stack s1: physical id was s1-random, is other"),
    (_emptied_physical_id, "resource random of stack s1: physical id was s1-random, is empty"),
    (_gone_config, "software_config row c1 is gone"),
], ids=["stack-gone", "soft-deleted", "resource-gone", "physical-id-changed",
        "physical-id-emptied", "software-config-gone"])
def test_each_loss_fires_one_line(craft: Any, line: str) -> None:
    found = found_rows()
    craft(found)
    assert inventory.vanished(EXPECTED, found) == [line]


def test_every_loss_at_once_is_every_line() -> None:
    found = found_rows()
    for craft in (_gone_stack, _soft_deleted, _gone_resource, _changed_physical_id,
                  _gone_config):
        craft(found)
    assert inventory.vanished(EXPECTED, found) == [
        "stack row s2 is gone (soft-deleted)", "stack row s2-child is gone",
        "resource random of stack s1: physical id was s1-random, is other",
        "resource row child of stack s2 is gone", "software_config row c1 is gone"]


def test_expected_rows_merge_every_record() -> None:
    records = [{"db": {"stacks": ["s1"], "resources": [["s1", "r", "p"]],
                       "software_configs": ["c1"]}},
               {"db": {"stacks": ["s2", "s2-child"], "resources": [],
                       "software_configs": []}}]
    assert inventory.expected_rows(records) == {
        "stacks": ["s1", "s2", "s2-child"], "resources": [["s1", "r", "p"]],
        "software_configs": ["c1"]}


# -- diff: the post-upgrade comparison ---------------------------------------------------------

RECORDED: dict[str, Any] = {
    "stack_status": "CREATE_COMPLETE",
    "parameters": {"greeting": "hello", "tags": "a,b"},
    "resources": {"s/random": {"physical_resource_id": "p1", "required_by": ["echo"]}},
}


def test_equal_values_diff_to_nothing() -> None:
    assert inventory.diff(RECORDED, copy.deepcopy(RECORDED)) == []


@pytest.mark.parametrize(("change", "line"), [
    (lambda d: d.update(stack_status="UPDATE_COMPLETE"),
     'stack_status: expected "CREATE_COMPLETE", found "UPDATE_COMPLETE"'),
    (lambda d: d["parameters"].pop("tags"), 'parameters.tags: missing (was "a,b")'),
    (lambda d: d["parameters"].update(size=8), "parameters.size: new (is 8)"),
    (lambda d: d["resources"]["s/random"].update(physical_resource_id="p2"),
     'resources.s/random.physical_resource_id: expected "p1", found "p2"'),
    (lambda d: d["resources"]["s/random"]["required_by"].append("more"),
     'resources.s/random.required_by: expected ["echo"], found ["echo", "more"]'),
], ids=["changed", "missing", "new", "nested-changed", "list-changed"])
def test_each_difference_is_one_line_naming_its_path(change: Any, line: str) -> None:
    found = copy.deepcopy(RECORDED)
    change(found)
    assert inventory.diff(RECORDED, found) == [line]


def test_diff_report_names_the_stack_and_cuts_long_lists() -> None:
    lines = [f"k{i}: expected 1, found 2" for i in range(inventory.MAX_DIFF_LINES + 5)]
    text = inventory.diff_report("outputs", StackRef("web", "1"), lines)
    assert text.startswith("outputs of stack web (1) changed across the upgrade:\n    k0:")
    assert text.endswith("\n    ... and 5 more")
    assert f"k{inventory.MAX_DIFF_LINES}:" not in text


FAKE_QUERY = """
import json, os, sys
with open(sys.argv[1], "a") as starts:
    starts.write(f"{os.getpid()}\\n")
for line in sys.stdin:
    request = json.loads(line)
    if request["stacks"] == ["broken"]:
        print(json.dumps({"error": "OperationalError: no such table: stack"}), flush=True)
    elif request["stacks"] == ["die"]:
        sys.exit(3)
    else:
        print(json.dumps({"stacks": [[sid] for sid in request["stacks"]]}), flush=True)
"""


def fake_release_python(tmp_path: Path) -> tuple[DbInfo, Path]:
    """A 'release python' that runs a stand-in for DB_QUERY and logs each start."""
    starts = tmp_path / "starts"
    script = tmp_path / "query.py"
    script.write_text(FAKE_QUERY)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {script} {starts}\n")
    python.chmod(0o755)
    return DbInfo("postgresql", "postgresql://x", str(python)), starts


def test_one_query_process_serves_every_pass_of_a_watch(tmp_path: Path) -> None:
    db, starts = fake_release_python(tmp_path)
    with inventory.DbReader(db, timeout=30) as reader:
        for ids in (["s1"], ["s1", "s2"], ["s3"]):
            assert reader.query({"stacks": ids, "software_configs": []}) == \
                {"stacks": [[sid] for sid in ids]}
        with pytest.raises(AssertionError, match="no such table: stack"):
            reader.query({"stacks": ["broken"], "software_configs": []})
        assert len(starts.read_text().split()) == 1  # one Python for all those passes
        with pytest.raises(AssertionError, match="no answer"):
            reader.query({"stacks": ["die"], "software_configs": []})
        assert reader.query({"stacks": ["s4"], "software_configs": []}) == {"stacks": [["s4"]]}
        assert len(starts.read_text().split()) == 2  # a new one after the first died
        proc = reader.proc
    assert proc is not None
    assert proc.poll() is not None  # closed: nothing left running
