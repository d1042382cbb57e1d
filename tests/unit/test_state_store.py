from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.state import StateStore, StoreCorrupt
from grenadier.state import store as store_module


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.jsonl",
                                                          "state.lock"]


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


def test_deferred_saves_are_read_by_another_store_and_folded_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    writer, reader = StateStore(path), StateStore(path)
    writer.save("runner", "port", 1)
    with writer.deferred():
        writer.save("tests", "a", {"n": 1})
        writer.save("tests", "b", [2])
        writer.save("tests", "a", {"n": 3})  # the later save wins
        # another process sees the journal at once; the snapshot does not hold it yet
        assert reader.namespace("tests") == {"a": {"n": 3}, "b": [2]}
        assert "tests" not in json.loads(path.read_text())["namespaces"]
        reader.save("runner", "port", 2)  # a save outside a deferred block folds everything
        writer.save("tests", "c", "after the fold")
        assert reader.get("tests", "c") == "after the fold"
    snapshot = json.loads(path.read_text())["namespaces"]
    assert snapshot == {"runner": {"port": 2},
                        "tests": {"a": {"n": 3}, "b": [2], "c": "after the fold"}}
    assert StateStore(path).namespace("tests") == snapshot["tests"]


def test_a_stale_journal_or_a_torn_last_line_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(path)
    with store.deferred():
        store.save("t", "kept", 1)
    journal = path.with_name("state.jsonl")
    # a crash between writing the snapshot and starting its journal: the old one is ignored
    stale = tmp_path / "stale"
    stale.write_text('old-journal-id\n["t", "kept"]\t"stale"\n')
    stale.replace(journal)
    assert StateStore(path).get("t", "kept") == 1
    with store.deferred():
        store.save("t", "new", 2)
        with journal.open("ab") as handle:
            handle.write(b'["t", "half"]\t{"cut of')  # a crash in the middle of an append
        assert StateStore(path).namespace("t") == {"kept": 1, "new": 2}
        store.save("t", "more", 3)  # appends over the torn tail
    assert StateStore(path).namespace("t") == {"kept": 1, "new": 2, "more": 3}


def test_a_corrupt_journal_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateStore(path).save("t", "a", 1)
    with path.with_name("state.jsonl").open("a") as handle:
        handle.write('["t", "b"]\t2\nnot a save\n')
    with pytest.raises(StoreCorrupt, match=r"journal state\.jsonl is corrupt near line 3"):
        StateStore(path).get("t", "a")


def test_saving_many_records_costs_what_they_hold(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """N deferred saves write O(N) bytes in all (whole-file rewrites would write O(N**2)),
    and a reader re-reads only what is new."""
    written: list[int] = []
    real = store_module.write_atomic

    def counting(path: Path, text: str, **kwargs: object) -> None:
        written.append(len(text))
        real(path, text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "write_atomic", counting)
    monkeypatch.setattr(store_module, "FOLD_AT_LEAST", 4096)
    path = tmp_path / "state.json"
    record = {"stack": "x" * 200}
    store = StateStore(path)
    with store.deferred():
        for i in range(400):
            store.save("tests", f"stack:{i}", record)
    assert len(StateStore(path).namespace("tests")) == 400
    total = 400 * len(json.dumps(record))
    assert sum(written) < 6 * total, (sum(written), total)


def _lock_fails(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def unlockable(path: Path, *, wait: bool = True) -> object:
        raise OSError(code, os.strerror(code), str(path))
    monkeypatch.setattr(store_module, "file_lock", unlockable)


def test_a_read_only_store_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StateStore(tmp_path / "state.json").save("a", "k", 1)
    _lock_fails(monkeypatch, errno.EROFS)
    store = StateStore(tmp_path / "state.json")
    store.validate()
    assert store.get("a", "k") == 1
    assert store.namespace("a") == {"k": 1}
    with pytest.raises(EnvironmentProblem, match=r"cannot write state store .*: Read-only"):
        store.save("a", "k", 2)


def test_a_lock_that_fails_otherwise_is_one_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    StateStore(tmp_path / "state.json").save("a", "k", 1)
    _lock_fails(monkeypatch, errno.EIO)
    with pytest.raises(EnvironmentProblem, match=r"cannot read state store .*: Input/output error"):
        StateStore(tmp_path / "state.json").get("a", "k")
