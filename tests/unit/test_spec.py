from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from grenadier.errors import UsageError
from grenadier.releases.spec import parse_spec, spec_in_freeze, tree_version


@pytest.mark.parametrize(("text", "version"), [
    ("27.0.1", "27.0.1"), ("openstack-heat==26.0.2", "26.0.2"), (" 25.0.2 ", "25.0.2"),
])
def test_pinned(text: str, version: str) -> None:
    spec = parse_spec(text)
    assert spec.kind == "pinned"
    assert spec.version == Version(version)


@pytest.mark.parametrize(("text", "back"), [("latest", 0), ("latest-1", 1), ("latest-2", 2)])
def test_latest(text: str, back: int) -> None:
    spec = parse_spec(text)
    assert spec.kind == "latest"
    assert spec.back == back


@pytest.mark.parametrize("text", ["", "newest", "latest+1", "heat==1", "27..1x!"])
def test_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError):
        parse_spec(text)


def test_local_tree(tmp_path: Path) -> None:
    (tmp_path / "heat").mkdir()
    (tmp_path / "heat" / "__init__.py").write_text("")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = openstack-heat\n")
    spec = parse_spec(str(tmp_path))
    assert spec.kind == "local"
    assert spec.path == tmp_path.resolve()


def test_path_that_is_not_heat(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = something-else\n")
    with pytest.raises(UsageError, match="not a Heat source tree"):
        parse_spec(str(tmp_path))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        parse_spec(str(tmp_path / "nope"))


@pytest.mark.parametrize(("line", "spec"), [
    ("openstack-heat==26.0.2", "26.0.2"),
    ("openstack-heat @ file:///src/heat", "/src/heat"),
])
def test_the_release_a_freeze_installed(tmp_path: Path, line: str, spec: str) -> None:
    freeze = tmp_path / "base-freeze.txt"
    freeze.write_text(f"alembic==1.16.5\n{line}\npbr==7.0.3\n")
    assert spec_in_freeze(freeze) == spec


def test_a_freeze_without_heat_is_bad_input(tmp_path: Path) -> None:
    freeze = tmp_path / "base-freeze.txt"
    freeze.write_text("alembic==1.16.5\n")
    with pytest.raises(UsageError, match="installs no openstack-heat"):
        spec_in_freeze(freeze)
    with pytest.raises(UsageError, match="cannot read"):
        spec_in_freeze(tmp_path / "missing.txt")


def test_a_tree_version_comes_from_its_pkg_info(tmp_path: Path) -> None:
    assert tree_version(tmp_path) is None
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: openstack-heat\n"
                                       "Version: 27.0.1.dev4\n")
    assert tree_version(tmp_path) == "27.0.1.dev4"
