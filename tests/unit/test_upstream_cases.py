"""The gabbi tests as grenadier names them, and the known failures data file (upstream/cases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grenadier.plugins.heat.upstream import cases
from grenadier.plugins.heat.upstream.tools import gabbits_dir
from tests.conftest import FakeTools


def test_cases_are_named_by_file_and_test_and_stay_unique(fake_tools: FakeTools) -> None:
    found = cases.load_cases(gabbits_dir(fake_tools.python))
    assert [(c.file, c.index, c.name) for c in found] == [
        ("softwareconfig.yaml", 0, "softwareconfig: create stack"),
        ("softwareconfig.yaml", 1, "softwareconfig: show deployment metadata"),
        ("softwareconfig.yaml", 2, "softwareconfig: create stack (2)")]
    assert found[1].id == "d26d1ae4-4924-11e8-842f-0ed5f89f718b"


def test_the_shipped_data_file_is_valid_and_names_its_reason() -> None:
    (entry,) = cases.load_known()
    assert (entry.file, entry.test) == ("softwareconfig.yaml", "show deployment metadata")
    assert entry.modes == ("noauth-admin-only",)
    assert "reader" in entry.reason
    assert "\n" not in entry.reason


def test_a_known_failure_is_skipped_only_in_its_mode(fake_tools: FakeTools) -> None:
    found = cases.load_cases(gabbits_dir(fake_tools.python))
    known = cases.load_known()
    skipped, stale = cases.skips(found, known, "noauth-admin-only")
    assert list(skipped) == ["softwareconfig: show deployment metadata"]
    assert skipped["softwareconfig: show deployment metadata"].startswith(
        "known failure in noauth-admin-only mode: the software_deployments:metadata policy")
    assert stale == []
    for mode in ("noauth", "keystone"):
        assert cases.skips(found, known, mode) == ({}, [])


def test_an_entry_naming_no_installed_test_is_reported_stale(fake_tools: FakeTools) -> None:
    found = cases.load_cases(gabbits_dir(fake_tools.python))
    renamed = cases.KnownFailure("d26d1ae4-4924-11e8-842f-0ed5f89f718b", "softwareconfig.yaml",
                                 "show metadata", ("keystone",), "why")
    gone = cases.KnownFailure("ffffffff", "gone.yaml", "gone", ("keystone",), "why")
    skipped, stale = cases.skips(found, [renamed, gone], "keystone")
    assert skipped == {}
    assert stale == [
        "softwareconfig.yaml: show metadata (d26d1ae4-4924-11e8-842f-0ed5f89f718b) is not a "
        "test of the installed plugin",
        "gone.yaml: gone (ffffffff) is not a test of the installed plugin"]


@pytest.mark.parametrize(("text", "error"), [
    ("- id: x\n  file: f.yaml\n  test: t\n  modes: [noauth]\n", "missing reason"),
    ("- id: x\n  file: f.yaml\n  test: t\n  modes: [sometimes]\n  reason: r\n",
     "unknown mode(s) ['sometimes']"),
    ("id: x\n", "expected a list of entries"),
])
def test_a_malformed_data_file_is_refused_naming_the_entry(tmp_path: Path, text: str,
                                                           error: str) -> None:
    path = tmp_path / "known.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(error)):
        cases.load_known(path)


def test_auth_mode() -> None:
    assert cases.auth_mode(keystone=True, topology="split") == "keystone"
    assert cases.auth_mode(keystone=False, topology="all-in-one") == "noauth"
    # heat-wsgi-api's own noauth, and a Heat grenadier did not start
    assert cases.auth_mode(keystone=False, topology="split") == "noauth-admin-only"
    assert cases.auth_mode(keystone=False, topology=None) == "noauth-admin-only"
