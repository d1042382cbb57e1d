"""How a venv's libraries are chosen: its *environment*.

OpenStack's gate installs each service with the upper-constraints of its release series: the
exact library versions that series was tested with. A venv resolved against today's package
index instead gets whatever was uploaded since, and a new library can break a release that
nothing changed (a verdict that depends on the day is a false alarm). So a release venv is built,
in order of preference, with:

- ``constraints``: the upper-constraints of its series (shipped as package data, see
  ``series.json``), or a file or URL the user gives;
- ``as-of``: the package index as it was shortly after the release was uploaded, when its
  series has no constraints that fit it (e.g. a development snapshot older than the release);
- ``freeze``: the exact ``pip freeze`` of an earlier run (``--environment-from``);
- ``none``: today's index, only when asked for.

The identity of an environment (its digest) is part of the release cache's key: a venv built
one way is never reused for another.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from grenadier.errors import UsageError

#: ``--constraints`` values that are not a series, a file or a URL
AUTO, NONE = "auto", "none"
#: how long after a release's upload its ``as-of`` environment still takes new uploads: the
#: libraries a release was tested with were on the index by then (measured for 27.0.1: uploaded
#: 2026-10-22, resolves and runs as of 2026-10-25)
UPLOAD_MARGIN = timedelta(days=3)
_SERIES = re.compile(r"^\d{4}\.\d$")
_PACKAGE_DATA = "constraints"


@dataclass(frozen=True)
class Series:
    """One OpenStack release series and the upper-constraints file shipped for it."""

    name: str
    codename: str
    slurp: bool
    file: str
    branch: str
    commit: str
    date: str
    development: bool = False
    #: project (PyPI name) -> the major version of that project released in this series
    majors: dict[str, int] = field(default_factory=dict)
    #: extra requirements every venv of this series needs (e.g. an old enough setuptools)
    requirements: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return _data_file(self.file)

    @property
    def label(self) -> str:
        kind = "development snapshot" if self.development else self.branch
        where = f"openstack/requirements@{self.commit[:8]}" if self.commit else \
            f"published copy of {self.date}"
        return f"{self.name} upper-constraints ({kind}, {where})"


@dataclass(frozen=True)
class Environment:
    """How one venv's libraries are chosen; ``digest`` is its identity in the cache."""

    kind: str
    #: for people: "2026.1 upper-constraints (...)", "as of 2026-10-25 (...)"
    label: str
    #: constraints text (``constraints``) or the freeze itself (``freeze``)
    text: str = ""
    #: ``as-of``: the newest upload date the resolver may take (an ISO date)
    exclude_newer: str = ""
    #: requirements added to the install (a series' own fixes)
    requirements: tuple[str, ...] = ()
    #: a series picked by grenadier (not the user): when it does not fit the release, the
    #: release is resolved as of its upload instead
    fallback: bool = False

    @property
    def digest(self) -> str:
        parts = [self.kind, self.text, self.exclude_newer, *self.requirements]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]

    @property
    def tag(self) -> str:
        """A short, readable part of a venv's directory name."""
        name = {"constraints": "uc", "as-of": "asof", "freeze": "freeze", "none": "index"}
        return f"{name.get(self.kind, self.kind)}-{self.digest[:8]}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "digest": self.digest,
                "exclude_newer": self.exclude_newer, "requirements": " ".join(self.requirements)}


@functools.lru_cache(maxsize=1)
def all_series() -> dict[str, Series]:
    """The series grenadier ships constraints for, oldest first."""
    data = json.loads(_data_file("series.json"))
    found = {}
    for name, item in sorted(data["series"].items()):
        found[name] = Series(
            name=name, codename=item["name"], slurp=bool(item["slurp"]), file=item["file"],
            branch=item["branch"], commit=item["commit"], date=item["date"],
            development=bool(item.get("development")), majors=dict(item.get("majors", {})),
            requirements=tuple(item.get("requirements", ())))
    return found


def series_of(package: str, major: int) -> Series | None:
    """The series in which ``package`` released major version ``major``, if one is shipped."""
    for series in all_series().values():
        if series.majors.get(package) == major:
            return series
    return None


def _data_file(name: str) -> str:
    return (resources.files("grenadier.releases") / _PACKAGE_DATA / name).read_text(
        encoding="utf-8")


def check_choice(text: str) -> str:
    """Validate a ``--constraints`` value (bad input is one line, exit 2); return it."""
    if text in (AUTO, NONE) or text.startswith(("http://", "https://")):
        return text
    if _SERIES.match(text):
        if text not in all_series():
            raise UsageError(f"--constraints {text}: no upper-constraints shipped for that "
                             "series", hint=f"series: {', '.join(all_series())}")
        return text
    if not Path(text).expanduser().is_file():
        raise UsageError(f"--constraints {text}: not a series, a file or a URL",
                         hint=f"use auto, none, a series ({', '.join(all_series())}), a "
                              "constraints file or an http(s) URL")
    return str(Path(text).expanduser().resolve())


def for_series(series: Series, *, fallback: bool = False) -> Environment:
    return Environment("constraints", series.label, text=series.text,
                       requirements=series.requirements, fallback=fallback)


def from_text(text: str, origin: str) -> Environment:
    """A constraints file or URL the user gave, by its content."""
    return Environment("constraints", f"constraints from {origin}", text=text)


def as_of(uploaded: datetime, what: str, why: str) -> Environment:
    """The index as it was ``UPLOAD_MARGIN`` after ``what`` was uploaded at ``uploaded``."""
    cutoff = (uploaded + UPLOAD_MARGIN).date().isoformat()
    return Environment("as-of", f"as of {cutoff} ({what} uploaded "
                                f"{uploaded.date().isoformat()}; {why})", exclude_newer=cutoff)


def from_freeze(path: Path) -> Environment:
    """Exactly the libraries an earlier run's venv had."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return Environment("freeze", f"the freeze {path}", text=text)


def unconstrained() -> Environment:
    return Environment("none", "no constraints (the package index as it is today)")


def described(data: dict[str, Any] | None) -> str:
    """One line for an environment as ``to_dict`` stored it (reports read it back)."""
    if not data:
        return "unknown"
    return str(data.get("label") or data.get("kind") or "unknown")
