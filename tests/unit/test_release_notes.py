"""A release's notes: a tree's own folder, a PyPI release's sdist downloaded once beside its
venv and read from the archive."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grenadier.errors import EnvironmentProblem
from grenadier.releases import Release
from grenadier.releases.notes import release_notes

NOTE = "---\nupgrade:\n  - |\n    Integration with vitrage has been removed.\n"
#: stands for the release's python: ``-m pip download ... -d DIR`` writes an sdist there
FAKE_PIP = '''#!{python}
import io, sys, tarfile
from pathlib import Path
args = sys.argv[1:]
with open({calls!r}, "a") as calls:
    calls.write(" ".join(args) + "\\n")
dest = Path(args[args.index("-d") + 1])
with tarfile.open(dest / "openstack_heat-27.0.1.tar.gz", "w:gz") as tar:
    for name, text in {{"remove-vitrage-2e4f.yaml": {note!r}, "README.rst": "x"}}.items():
        data = text.encode()
        info = tarfile.TarInfo(f"openstack_heat-27.0.1/releasenotes/notes/{{name}}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    info = tarfile.TarInfo("openstack_heat-27.0.1/heat/notes.yaml")
    info.size = 1
    tar.addfile(info, io.BytesIO(b"x"))
'''


def _pypi_release(tmp_path: Path) -> tuple[Release, Path]:
    venv = tmp_path / "openstack-heat-27.0.1"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    python = venv / "bin" / "python"
    python.write_text(FAKE_PIP.format(python=sys.executable, calls=str(calls), note=NOTE))
    python.chmod(0o755)
    return Release("27.0.1", "27.0.1", venv, "pypi"), calls


def test_a_pypi_release_reads_its_sdist_downloaded_once(tmp_path: Path) -> None:
    release, calls = _pypi_release(tmp_path)
    assert release_notes(release) == {"remove-vitrage-2e4f.yaml": NOTE}
    assert release_notes(release) == {"remove-vitrage-2e4f.yaml": NOTE}
    (call,) = calls.read_text().splitlines()
    assert call.startswith("-m pip download --no-deps --no-binary :all: openstack-heat==27.0.1")
    assert list((release.venv / "grenadier-sdist").glob("*.tar.gz"))


def test_a_source_tree_reads_its_own_folder(tmp_path: Path) -> None:
    notes = tmp_path / "tree" / "releasenotes" / "notes"
    notes.mkdir(parents=True)
    (notes / "remove-x.yaml").write_text(NOTE)
    (notes / "README.rst").write_text("not a note")
    tree = Release("local:tree@27.0.1", "27.0.1", tmp_path / "venv", "local",
                   str(tmp_path / "tree"))
    assert release_notes(tree) == {"remove-x.yaml": NOTE}
    bare = Release("local:bare@0", "0.0.0", tmp_path / "venv", "local", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="has no releasenotes/notes folder"):
        release_notes(bare)


def test_an_unreadable_sdist_is_one_line(tmp_path: Path) -> None:
    release, _ = _pypi_release(tmp_path)
    (release.venv / "grenadier-sdist").mkdir()
    (release.venv / "grenadier-sdist" / "openstack_heat-27.0.1.tar.gz").write_bytes(b"no tar")
    with pytest.raises(EnvironmentProblem, match="cannot read the release notes"):
        release_notes(release)


def test_the_notes_read_from_an_sdist_are_kept_beside_it(tmp_path: Path) -> None:
    release, _ = _pypi_release(tmp_path)
    assert release_notes(release) == {"remove-vitrage-2e4f.yaml": NOTE}
    (archive,) = (release.venv / "grenadier-sdist").glob("*.tar.gz")
    archive.write_bytes(b"no tar any more")  # a second read must not open the archive
    assert release_notes(release) == {"remove-vitrage-2e4f.yaml": NOTE}
    kept = archive.with_name(f"{archive.name}.notes.json")
    kept.write_text("[not the notes]")  # a damaged copy is read from the archive again
    with pytest.raises(EnvironmentProblem, match="cannot read the release notes"):
        release_notes(release)
