"""The held windows of --mode rolling on fakes: every operation recorded with its request ids,
a failure made an error finding at its window, smoke tests attributed through the request log."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from grenadier.model.result import TestOutcome
from grenadier.phases import rolling_window
from grenadier.phases.rolling_window import HeldWindows
from grenadier.plugins.heat.suite import inventory
from grenadier.services import request_log
from grenadier.services.heat_client import HeatClient, StackRef
from tests.helpers.fake_heat import FakeHeat


def _windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str = "") -> HeldWindows:
    def fake(name: str) -> Any:
        def call(heat: HeatClient, rec: dict[str, Any]) -> None:
            heat.get_stack(inventory.ref_of(rec))  # one answer of Heat, with its request id
            if name == broken:
                raise AssertionError(f"{name} of {rec['name']}: boom")
        return call

    monkeypatch.setattr(rolling_window, "_chain", lambda key: [
        (op, fake(op)) for op in ("show", "outputs", "resources", "update", "check")])
    monkeypatch.setattr(HeldWindows, "_smoke", lambda self, window: None)
    ctx = SimpleNamespace(run_dir=tmp_path, db=SimpleNamespace(serial=False))
    heat = FakeHeat()
    windows = HeldWindows(ctx, heat.client, "wl")  # type: ignore[arg-type]
    windows.stacks = {w: {key: _record(heat.add(f"{w}-{key}", "CREATE_COMPLETE"))
                          for key in ("params", "nested")}
                      for w in rolling_window.WINDOWS}
    return windows


def _record(ref: StackRef) -> dict[str, Any]:
    return {"name": ref.name, "id": ref.id}


def test_a_clean_window_records_every_operation_with_its_request_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = _windows(tmp_path, monkeypatch)
    lines = windows.run("held-target-only")
    records = windows.records["held-target-only"]
    assert sorted(r.op for r in records) == sorted(
        ["list"] + ["show", "outputs", "resources", "update", "check"] * 2)
    assert all(r.ok and r.request_ids and r.step == "held-target-only" for r in records)
    assert windows.failure_findings() == []
    assert lines == ["held-target-only: 11 operations on old stacks and by smoke tests, 11 ok "
                     "(the old API served by new engines only)"]


def test_a_failed_operation_is_an_error_at_its_window_and_ends_its_stack_s_chain(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = _windows(tmp_path, monkeypatch, broken="resources")
    windows.run("held-mixed")
    failed = [r for r in windows.records["held-mixed"] if not r.ok]
    assert sorted(r.stack for r in failed) == ["held-mixed-nested", "held-mixed-params"]
    # nothing after the failure on that stack: its state is unknown
    assert not [r for r in windows.records["held-mixed"] if r.op in ("update", "check")]
    [first, _] = sorted(windows.failure_findings(), key=lambda f: f.what)
    assert (first.check, first.severity, first.kind) == ("held-window", "error", "held-mixed")
    assert first.what == ("resources of old stack held-mixed-nested failed with the old API "
                          "served by old and new engines together")
    assert "AssertionError: resources of held-mixed-nested: boom" in first.found
    assert first.where.startswith("step held-mixed, operation #")


def test_smoke_tests_are_attributed_through_the_request_log(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    record = request_log.recorder({request_log.ENV: str(path)})
    assert record is not None
    assert request_log.recorder({}) is None
    request = httpx.Request("GET", "http://heat/v1/p/stacks")
    for test, rid in (("suite/test_heat_smoke.py::test_show", "req-1"),
                      ("suite/test_heat_smoke.py::test_show", "req-2"),
                      ("suite/test_heat_smoke.py::test_delete", "req-3")):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYTEST_CURRENT_TEST", f"{test} (call)")
            record(httpx.Response(200, headers={"x-openstack-request-id": rid},
                                  request=request))
    with path.open("a") as log:
        log.write("not json\n")
    lines = request_log.read(path)
    assert [(line["test"], line["request_id"]) for line in lines] == [
        ("suite/test_heat_smoke.py::test_show", "req-1"),
        ("suite/test_heat_smoke.py::test_show", "req-2"),
        ("suite/test_heat_smoke.py::test_delete", "req-3")]
    windows = HeldWindows(SimpleNamespace(), lambda: None, "wl")  # type: ignore[arg-type,return-value]
    by_test: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_test.setdefault(line["test"], []).append(line)
    shown = windows._smoke_record(
        "held-mixed", TestOutcome("test_heat_smoke::test_show", "passed", 0.1), by_test)
    assert (shown.op, shown.stack, shown.ok, shown.request_ids) == (
        "smoke", "test_show", True, ["req-1", "req-2"])
    failed = windows._smoke_record(
        "held-mixed", TestOutcome("test_heat_smoke::test_delete", "failed", 0.1, "500"), by_test)
    assert (failed.ok, failed.error) == (False, "500")
    assert json.loads(json.dumps(failed.to_dict()))["step"] == "held-mixed"
