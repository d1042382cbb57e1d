"""The gabbi tests of the plugin as grenadier names them, and the ones a mode cannot pass.

Read from the files with PyYAML (nothing of the plugin is imported here): each test gets a name
unique in the run, ``<file stem>: <test name>`` (a second test of the same name in a file gets
`` (2)``), which the phases' reports and the base/target comparison key on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KNOWN_FAILURES = Path(__file__).with_name("known_failures.yaml")
#: how the running Heat authenticates the tests' requests (see known_failures.yaml)
MODES = ("noauth", "noauth-admin-only", "keystone")


@dataclass(frozen=True)
class Case:
    """One gabbi test: where it is in its file, and its names."""

    file: str
    index: int
    title: str
    #: the test's ``desc``, its tempest id
    id: str
    name: str


@dataclass(frozen=True)
class KnownFailure:
    """A test that cannot pass in ``modes`` for ``reason``, a reason outside Heat."""

    id: str
    file: str
    test: str
    modes: tuple[str, ...]
    reason: str


def load_cases(gabbits: Path) -> list[Case]:
    """Every test of every ``*.yaml`` file in ``gabbits``, in file order then test order."""
    cases: list[Case] = []
    for path in sorted(gabbits.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        tests = data.get("tests") if isinstance(data, dict) else None
        if not isinstance(tests, list):
            raise ValueError(f"{path}: no list of tests")
        seen: dict[str, int] = {}
        for index, test in enumerate(tests):
            title = str(test.get("name", f"test {index}")) if isinstance(test, dict) else ""
            seen[title] = seen.get(title, 0) + 1
            suffix = f" ({seen[title]})" if seen[title] > 1 else ""
            desc = str(test.get("desc", "")) if isinstance(test, dict) else ""
            cases.append(Case(path.name, index, title, desc, f"{path.stem}: {title}{suffix}"))
    return cases


def _entry(raw: Mapping[str, Any], where: str) -> KnownFailure:
    missing = [k for k in ("id", "file", "test", "modes", "reason") if not raw.get(k)]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    modes = tuple(str(m) for m in raw["modes"])
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"{where}: unknown mode(s) {unknown}; modes: {', '.join(MODES)}")
    return KnownFailure(str(raw["id"]), str(raw["file"]), str(raw["test"]), modes,
                        " ".join(str(raw["reason"]).split()))


def load_known(path: Path = KNOWN_FAILURES) -> list[KnownFailure]:
    """The data file of known failures; a malformed entry is a ValueError naming it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of entries")
    return [_entry(raw if isinstance(raw, dict) else {}, f"{path.name} entry {n}")
            for n, raw in enumerate(data, 1)]


def auth_mode(*, keystone: bool, topology: str | None) -> str:
    """The mode a run's tests are in: a real token, the launcher's noauth, or plain noauth."""
    if keystone:
        return "keystone"
    # only grenadier's single-process launcher passes the token's roles on under noauth
    return "noauth" if topology == "all-in-one" else "noauth-admin-only"


def skips(cases: Sequence[Case], known: Sequence[KnownFailure],
          mode: str) -> tuple[dict[str, str], list[str]]:
    """Test name -> reason for the tests ``mode`` cannot pass; and the entries that name no
    test of ``cases`` (a stale data file: the plugin renamed or dropped the test)."""
    by_id = {case.id: case for case in cases}
    found: dict[str, str] = {}
    stale: list[str] = []
    for entry in known:
        case = by_id.get(entry.id)
        if case is None or (case.file, case.title) != (entry.file, entry.test):
            stale.append(f"{entry.file}: {entry.test} ({entry.id}) is not a test of the "
                         "installed plugin")
        elif mode in entry.modes:
            found[case.name] = f"known failure in {mode} mode: {entry.reason}"
    return found, stale
