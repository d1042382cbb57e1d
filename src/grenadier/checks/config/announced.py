"""Whether a release's notes announced the removal of an option its code removed silently.

OpenStack's deprecation policy asks for an option to be marked ``deprecated_for_removal`` for
a release before it goes; a deployer who reads the release notes may still have been told. A
note counts when it speaks of removing or deprecating something and names the option (with its
group, unless it is in ``[DEFAULT]``) or its whole group (``[cache]``; for a client plugin's
``[clients_vitrage]``, the service: "Integration with vitrage has been removed").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

from grenadier.errors import EnvironmentProblem
from grenadier.model.findings import Finding
from grenadier.releases import Release
from grenadier.releases.notes import release_notes

_REMOVAL = re.compile(r"\b(?:remov\w*|drop\w*|no longer)\b", re.IGNORECASE)
_DEPRECATION = re.compile(r"\bdeprecat\w*", re.IGNORECASE)
#: Heat's options for the client of another service: ``[clients_<service>]``
CLIENT_GROUP = "clients_"
#: notes cited at most per finding
CITED = 3


def _word(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def _group_named(group: str, text: str) -> bool:
    """The note names the whole group: as a section (``[cache]``), or, for the options of
    one of Heat's client plugins (``[clients_vitrage]``), the service (vitrage)."""
    if re.search(rf"\[{re.escape(group)}\]|``{re.escape(group)}``", text, re.IGNORECASE):
        return True
    service = group.removeprefix(CLIENT_GROUP)
    return group.startswith(CLIENT_GROUP) and bool(service) and _word(service, text)


def announcing(notes: Mapping[str, str], group: str, name: str) -> list[str]:
    """The notes that announce the removal of ``[group] name``: those saying it is removed
    first, then those deprecating it."""
    removed, deprecated = [], []
    for file, text in notes.items():
        option = _word(name, text) and (group == "DEFAULT" or _word(group, text)
                                        or _group_named(group, text))
        if not (option or _group_named(group, text)):
            continue
        if _REMOVAL.search(text):
            removed.append(file)
        elif _DEPRECATION.search(text):
            deprecated.append(file)
    return removed + deprecated


def with_notes(findings: list[Finding], target: Release, log: Path | None) -> list[Finding]:
    """``findings`` with each silent removal saying whether the target's notes announced it."""
    silent = [f for f in findings if f.kind == "removed-without-notice"]
    if not silent:
        return findings
    try:
        notes = release_notes(target, log)
    except EnvironmentProblem as exc:
        said = f"release notes not read ({exc.one_line()})"
        return [_said(f, said) if f in silent else f for f in findings]
    return [_said(f, _verdict(notes, f, target.label)) if f in silent else f for f in findings]


def _verdict(notes: Mapping[str, str], finding: Finding, release: str) -> str:
    group, _, name = finding.where.partition("] ")
    cited = announcing(notes, group.lstrip("["), name)
    if not cited:
        return f"no release note of {release} announces it"
    more = f" and {len(cited) - CITED} more" if len(cited) > CITED else ""
    return f"announced in the release notes: {', '.join(cited[:CITED])}{more}"


def _said(finding: Finding, said: str) -> Finding:
    return dataclasses.replace(finding, found=f"{finding.found}; {said}")
