"""A versioned JSON store, written atomically, namespaced per plugin or test module.

Modelled on pytest's stepwise cache: a corrupt or foreign file is a clear error, never a
traceback, and a write never leaves half a file behind.

The cost of a save must not grow with what the store already holds (a run records every stack
it made: thousands, saved one by one from many threads). So the store is two files: the
snapshot (``state.json``, complete whenever nobody is saving in bulk) and, beside it, a journal
(``state.jsonl``) that saves append to inside :meth:`StateStore.deferred` (one line per save:
the namespace and key, a tab, the value). Readers replay the journal on top of the snapshot,
and a process reads only what changed since its last read. The journal is folded into the
snapshot when the deferred block ends, whenever it has grown past the snapshot's size (so the
folds cost, in all, a constant times what was saved), and by every save outside such a block.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grenadier.errors import EnvironmentProblem
from grenadier.host import file_lock, write_atomic

#: the runner's own namespace: releases, port, step results, inventories, restore command
RUNNER = "runner"
FORMAT = "grenadier-state"
VERSION = 1
#: a journal smaller than this is never folded early (a fold rewrites the whole snapshot)
FOLD_AT_LEAST = 256 * 1024
#: why a reader may be unable to open the lock file: nobody can write there then either (a
#: read-only disk), or not this user; the atomic writes keep a lock-less read whole
UNLOCKABLE = (errno.EROFS, errno.EACCES, errno.EPERM)

Texts = dict[str, dict[str, str]]


class StoreCorrupt(EnvironmentProblem):
    """The state file exists but cannot be used."""


class StateStore:
    """Namespaced key/value store in one JSON file, safe across processes (file lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = path.with_name(path.name + "l")
        #: every value as JSON text, as of the last read
        self._texts: Texts = {}
        #: (inode, size, mtime) of the snapshot read, its journal id, journal bytes replayed
        self._seen: tuple[int, int, int] | None = None
        self._journal_id = ""
        self._journal_ino = 0
        #: journal bytes and lines replayed (its header included)
        self._offset = self._line = 0
        self._deferred = 0
        self._mutex = threading.RLock()

    # reading -----------------------------------------------------------------------------
    def _corrupt(self, what: str) -> StoreCorrupt:
        return StoreCorrupt(f"state store {self.path} {what}",
                            hint="start a new run; this one cannot be resumed")

    def _load_snapshot(self) -> tuple[Texts, str]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, ""
        except OSError as exc:
            raise StoreCorrupt(f"cannot read state store {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise self._corrupt(f"is corrupt (not JSON: {exc.msg} at line {exc.lineno})") \
                from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StoreCorrupt(f"{self.path} is not a grenadier state store")
        if data.get("version") != VERSION:
            raise StoreCorrupt(
                f"state store {self.path} has version {data.get('version')!r}, "
                f"this grenadier reads version {VERSION}",
                hint="resume it with the grenadier that started it")
        namespaces = data.get("namespaces")
        if not isinstance(namespaces, dict) or not all(
                isinstance(v, dict) for v in namespaces.values()):
            raise self._corrupt("has no namespaces, or broken ones")
        texts = {ns: {key: json.dumps(value) for key, value in values.items()}
                 for ns, values in namespaces.items()}
        return texts, str(data.get("journal") or "")

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _journal_inode(self) -> int:
        try:
            return os.stat(self.journal).st_ino
        except FileNotFoundError:
            return 0

    def _sync(self) -> None:
        """Bring the in-memory texts up to date with the files (the caller holds the lock)."""
        identity, journal = self._identity(), self._journal_inode()
        if identity is None or identity != self._seen or journal != self._journal_ino:
            self._texts, self._journal_id = self._load_snapshot()
            self._seen, self._offset = identity, 0
        self._journal_ino = journal
        self._replay()

    def _replay(self) -> None:
        try:
            with self.journal.open("rb") as handle:
                if self._offset == 0:
                    header = handle.readline()
                    if not header.endswith(b"\n") or \
                            header.strip().decode(errors="replace") != self._journal_id:
                        return  # another snapshot's journal: already folded into this one
                    self._offset, self._line = len(header), 1
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]  # a torn last line is not a save
        for number, line in enumerate(complete.splitlines(), self._line + 1):
            head, tab, value = line.partition(b"\t")
            try:
                namespace, key = json.loads(head)
            except (ValueError, TypeError) as exc:
                raise self._corrupt(f"journal {self.journal.name} is corrupt near line "
                                    f"{number}") from exc
            if not tab:
                raise self._corrupt(f"journal {self.journal.name} is corrupt near line {number}")
            self._texts.setdefault(str(namespace), {})[str(key)] = value.decode("utf-8")
            self._line = number
        self._offset += len(complete)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex, file_lock(self.path.with_suffix(".lock")):
            yield

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """The lock for a read; a store in a directory this process cannot write to (a
        read-only run directory, another user's) is read without it."""
        with self._mutex, contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.path.with_suffix(".lock")))
            except OSError as exc:
                if exc.errno not in UNLOCKABLE:
                    raise EnvironmentProblem(f"cannot read state store {self.path}: "
                                             f"{exc.strerror or exc}") from exc
            yield

    def validate(self) -> None:
        """Raise :class:`StoreCorrupt` if the file exists and cannot be used."""
        with self._reading():
            self._sync()

    def _value(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._corrupt("holds a value that is not JSON") from exc

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        with self._reading():
            self._sync()
            text = self._texts.get(namespace, {}).get(key)
        return default if text is None else self._value(text)

    def namespace(self, namespace: str) -> dict[str, Any]:
        with self._reading():
            self._sync()
            texts = dict(self._texts.get(namespace, {}))
        return {key: self._value(text) for key, text in texts.items()}

    # writing -----------------------------------------------------------------------------
    def _fold(self) -> None:
        """Write every value into a new snapshot; start a new (empty) journal for it."""
        journal_id = uuid.uuid4().hex
        parts = [f'{json.dumps(ns)}: {{\n' + ",\n".join(
            f"  {json.dumps(key)}: {text}" for key, text in sorted(values.items())) + "}"
            for ns, values in sorted(self._texts.items())]
        write_atomic(self.path, f'{{"format": "{FORMAT}", "version": {VERSION}, "journal": '
                     f'"{journal_id}", "namespaces": {{\n' + ",\n".join(parts) + "}}\n",
                     private=True)
        # the snapshot names its journal first: a crash now leaves an old journal it ignores
        write_atomic(self.journal, journal_id + "\n", private=True)
        self._seen, self._journal_id = self._identity(), journal_id
        self._journal_ino, self._offset = self._journal_inode(), len(journal_id) + 1
        self._line = 1

    def _append(self, namespace: str, key: str, text: str) -> None:
        if self._offset == 0:  # no journal behind this snapshot (none yet, or a stale one)
            self._fold()  # a journal is only ever appended to behind a snapshot naming it
        line = json.dumps([namespace, key]).encode() + b"\t" + text.encode("utf-8") + b"\n"
        with self.journal.open("r+b") as handle:
            handle.seek(self._offset)  # drops the torn tail a crash mid-append left
            try:
                handle.write(line)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())  # the state store is what --resume starts from
            except BaseException:
                handle.truncate(self._offset)
                raise
        self._offset += len(line)
        self._line += 1
        snapshot = self._seen[1] if self._seen else 0
        if self._offset > max(FOLD_AT_LEAST, snapshot):
            self._fold()

    def save(self, namespace: str, key: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        try:
            # pytest runs the phase tests in a child process while the runner also writes
            with self._locked():
                self._sync()
                previous = self._texts.get(namespace, {}).get(key)
                self._texts.setdefault(namespace, {})[key] = text
                try:
                    if self._deferred:
                        self._append(namespace, key, text)
                    else:
                        self._fold()
                except BaseException:
                    self._forget(namespace, key, previous)
                    raise
        except OSError as exc:
            # a read-only or full run directory: one line, not a traceback from deep inside
            raise EnvironmentProblem(
                f"cannot write state store {self.path}: {exc.strerror or exc}",
                hint="the run directory must be writable and its disk not full",
            ) from exc

    def _forget(self, namespace: str, key: str, previous: str | None) -> None:
        """Undo a save that did not reach the disk; read everything again next time."""
        if previous is None:
            self._texts.get(namespace, {}).pop(key, None)
        else:
            self._texts[namespace][key] = previous
        self._seen = None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[StateStore]:
        """Within the block, saves only append to the journal (what a bulk of saves costs
        stays proportional to what they save); the journal is folded at its end."""
        with self._mutex:
            self._deferred += 1
        try:
            yield self
        finally:
            with self._mutex:
                self._deferred -= 1
                last = self._deferred == 0
            if last:
                self.fold()

    def fold(self) -> None:
        """Fold the journal into the snapshot now (nothing to do when it is empty)."""
        try:
            with self._locked():
                self._sync()
                header = len(self._journal_id) + 1
                if self.journal.exists() and self.journal.stat().st_size > header:
                    self._fold()
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write state store {self.path}: "
                                     f"{exc.strerror or exc}") from exc
