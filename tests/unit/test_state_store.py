from __future__ import annotations

import json
from pathlib import Path

import pytest

from grenadier.state import StateStore, StoreCorrupt


def test_round_trip_and_namespaces(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save("a", "k", {"x": 1})
    store.save("b", "k", [1, 2])
    assert store.get("a", "k") == {"x": 1}
    assert store.get("b", "k") == [1, 2]
    assert store.get("a", "missing", "dflt") == "dflt"
    assert store.namespace("b") == {"k": [1, 2]}


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    for i in range(5):
        store.save("n", str(i), i)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.lock"]


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": "grenadier-state", "vers')
    with pytest.raises(StoreCorrupt, match="corrupt"):
        StateStore(path).get("a", "b")


@pytest.mark.parametrize("payload", [
    {"format": "grenadier-state", "version": 99, "namespaces": {}},
    {"format": "other", "version": 1},
    [1, 2, 3],
])
def test_foreign_or_future_file(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(StoreCorrupt):
        StateStore(path).validate()


def test_broken_namespace_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format": "grenadier-state", "version": 1,
                                "namespaces": {"runner": []}}))
    with pytest.raises(StoreCorrupt, match="broken"):
        StateStore(path).validate()
