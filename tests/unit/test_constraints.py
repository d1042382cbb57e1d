"""Environments: which upper-constraints a release gets, how a choice is checked, and what
the package index is asked about a release's upload."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from grenadier.errors import EnvironmentProblem, UsageError
from grenadier.releases import constraints as envs
from grenadier.releases import index, refresh
from grenadier.releases.memo import IndexMemo


@pytest.mark.parametrize(("major", "series"), [
    (24, "2025.1"), (25, "2025.2"), (26, "2026.1"), (27, "2026.2"), (23, None), (28, None)])
def test_heat_majors_map_to_their_series(major: int, series: str | None) -> None:
    found = envs.series_of("openstack-heat", major)
    assert (found.name if found else None) == series


def test_shipped_series_are_complete_and_slurp_is_2025_1_to_2026_1() -> None:
    shipped = envs.all_series()
    assert list(shipped) == ["2025.1", "2025.2", "2026.1", "2026.2"]
    assert [name for name, s in shipped.items() if s.slurp] == ["2025.1", "2026.1"]
    for series in shipped.values():
        assert "cryptography===" in series.text
        assert len(series.commit) == 40
    assert shipped["2026.2"].development
    assert "development snapshot" in shipped["2026.2"].label
    assert shipped["2025.1"].requirements == ("setuptools<81",)


def test_digest_follows_the_content_and_tags_the_venv() -> None:
    a = envs.from_text("six===1.16.0\n", "a.txt")
    b = envs.from_text("six===1.17.0\n", "a.txt")
    assert a.digest != b.digest
    assert a.digest == envs.from_text("six===1.16.0\n", "elsewhere.txt").digest
    assert a.tag == f"uc-{a.digest[:8]}"
    assert envs.unconstrained().tag.startswith("index-")


def test_as_of_is_the_upload_plus_the_margin() -> None:
    uploaded = datetime(2026, 10, 22, 8, 44, tzinfo=timezone.utc)
    environment = envs.as_of(uploaded, "openstack-heat 27.0.1", "why")
    assert environment.exclude_newer == "2026-10-25"
    assert environment.label == ("as of 2026-10-25 (openstack-heat 27.0.1 uploaded 2026-10-22; "
                                 "why)")


@pytest.mark.parametrize("text", ["auto", "none", "2026.1", "https://example.invalid/uc"])
def test_valid_choices_are_kept(text: str) -> None:
    assert envs.check_choice(text) == text


def test_a_file_choice_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "uc.txt").write_text("six===1.16.0\n")
    monkeypatch.chdir(tmp_path)
    assert envs.check_choice("uc.txt") == str(tmp_path / "uc.txt")


@pytest.mark.parametrize(("text", "words"), [
    ("2024.2", "no upper-constraints shipped for that series"),
    ("no-such-file.txt", "not a series, a file or a URL"),
])
def test_bad_choices_are_one_line(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        envs.check_choice(text)


def test_described_reads_back_what_a_report_stored() -> None:
    environment = envs.for_series(envs.all_series()["2026.1"])
    assert envs.described(environment.to_dict()) == environment.label
    assert envs.described(None) == "unknown"


# -- the index --------------------------------------------------------------------------------

@pytest.mark.parametrize(("filename", "version", "matches"), [
    ("openstack_heat-27.0.1-py3-none-any.whl", "27.0.1", True),
    ("openstack_heat-27.0.1.tar.gz", "27.0.1", True),
    ("openstack_heat-27.0.10-py3-none-any.whl", "27.0.1", False),
    ("openstack_heat-27.0.1.0rc1.tar.gz", "27.0.1", False),
])
def test_files_of_a_release(filename: str, version: str, matches: bool) -> None:
    assert index._is_file_of(filename, "openstack-heat", version) is matches


def _answer(monkeypatch: pytest.MonkeyPatch, payload: Any, status: int = 200) -> list[str]:
    asked: list[str] = []

    def get(url: str, **kwargs: Any) -> httpx.Response:
        asked.append(url)
        assert kwargs["headers"]["Accept"] == "application/vnd.pypi.simple.v1+json"
        return httpx.Response(status, json=payload, request=httpx.Request("GET", url))

    monkeypatch.setattr(index.httpx, "get", get)
    return asked


def test_upload_time_is_the_first_file_of_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, {"files": [
        {"filename": "openstack_heat-27.0.1.tar.gz", "upload-time": "2026-10-22T08:44:14Z"},
        {"filename": "openstack_heat-27.0.1-py3-none-any.whl",
         "upload-time": "2026-10-22T08:44:12.669046Z"},
        {"filename": "openstack_heat-27.0.0.tar.gz", "upload-time": "2026-09-30T08:00:00Z"}]})
    when = index.upload_time("http://index.invalid/simple/", "openstack_heat", "27.0.1")
    assert when == datetime(2026, 10, 22, 8, 44, 12, 669046, tzinfo=timezone.utc)
    assert asked == ["http://index.invalid/simple/openstack-heat/"]


def test_an_index_without_upload_times_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _answer(monkeypatch, {"files": [{"filename": "openstack_heat-27.0.1.tar.gz"}]})
    with pytest.raises(EnvironmentProblem, match="gives no upload time"):
        index.upload_time("http://index.invalid/simple", "openstack-heat", "27.0.1")
    _answer(monkeypatch, {}, status=404)
    with pytest.raises(EnvironmentProblem, match=r"cannot read when openstack-heat 27\.0\.1"):
        index.upload_time("http://index.invalid/simple", "openstack-heat", "27.0.1")


def test_memo_remembers_uploads_and_unfit_constraints(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, {"files": [
        {"filename": "openstack_heat-27.0.1.tar.gz", "upload-time": "2026-10-22T08:44:14Z"}]})
    memo = IndexMemo(tmp_path / "index.json")
    first = memo.uploaded("openstack-heat", "27.0.1", lambda: "http://index.invalid/simple")
    again = IndexMemo(tmp_path / "index.json").uploaded("openstack-heat", "27.0.1",
                                                         lambda: pytest.fail("asked again"))
    assert first == again
    assert len(asked) == 1
    assert memo.fits("d1", "openstack-heat==27.0.1")
    memo.unfit("d1", "openstack-heat==27.0.1")
    assert not IndexMemo(tmp_path / "index.json").fits("d1", "openstack-heat==27.0.1")
    assert memo.fits("d2", "openstack-heat==27.0.1")
    (tmp_path / "index.json").write_text("{corrupt")  # forgotten, asked again: never fatal
    assert memo.fits("d1", "openstack-heat==27.0.1")


# -- the maintainers' refresh -----------------------------------------------------------------

def test_refresh_replaces_a_snapshot_by_the_published_branch_file(tmp_path: Path) -> None:
    data = tmp_path / "constraints"
    shutil.copytree(Path(envs.__file__).with_name("constraints"), data)
    asked: list[str] = []

    def fetch(url: str) -> str:
        asked.append(url)
        return "cryptography===46.0.0\n"

    assert refresh.refresh(["2026.2"], {}, data, fetch) == ["2026.2.txt"]
    assert asked == ["https://releases.openstack.org/constraints/upper/2026.2"]
    entry = json.loads((data / "series.json").read_text())["series"]["2026.2"]
    assert entry["development"] is False
    assert entry["branch"] == "stable/2026.2"
    assert entry["majors"] == {"openstack-heat": 27, "keystone": 30, "heat-tempest-plugin": 3}
    assert (data / "2026.2.txt").read_text() == "cryptography===46.0.0\n"
    assert not (data / "2026.2-development-2026-08-22.txt").exists()


def test_refresh_refuses_a_page_without_pins(tmp_path: Path) -> None:
    data = tmp_path / "constraints"
    shutil.copytree(Path(envs.__file__).with_name("constraints"), data)
    with pytest.raises(UsageError, match="holds no pins"):
        refresh.refresh(["2027.1"], {"openstack-heat": 28}, data, lambda url: "<html>")
    with pytest.raises(UsageError, match="describe one series"):
        refresh.refresh([], {"openstack-heat": 28}, data, lambda url: "")
