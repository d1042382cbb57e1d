"""A release's release notes (reno: ``releasenotes/notes/*.yaml`` in its source).

A source tree has them in its folder; a PyPI release in its sdist, downloaded once with the
release's own pip and kept beside its venv (``<venv>/grenadier-sdist/``), so that a later run
reads the notes without asking the index again. The notes read from it are kept there too, as
JSON: reading them out of the 2 MB archive takes about 0.3 s of every run's upgrade step.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import file_lock, write_atomic
from grenadier.releases.release import Release
from grenadier.releases.spec import PACKAGE

NOTES = PurePosixPath("releasenotes/notes")
SDIST_DIR = "grenadier-sdist"
DOWNLOAD_TIMEOUT = 300.0


def release_notes(release: Release, log: Path | None = None) -> dict[str, str]:
    """File name -> text of every release note of ``release``.

    EnvironmentProblem (one line) when the notes cannot be had: an sdist that does not
    download, a tree without the folder.
    """
    if release.kind == "local":
        folder = Path(release.source) / NOTES
        if not folder.is_dir():
            raise EnvironmentProblem(f"{release.label} has no {NOTES} folder")
        return {path.name: path.read_text(encoding="utf-8", errors="replace")
                for path in sorted(folder.glob("*.yaml"))}
    return _cached_notes(sdist(release, log))


def _cached_notes(archive: Path) -> dict[str, str]:
    """The notes in ``archive``, read once and kept beside it (``<archive>.notes.json``)."""
    kept = archive.with_name(f"{archive.name}.notes.json")
    try:
        notes = json.loads(kept.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        notes = None
    if isinstance(notes, dict) and all(isinstance(v, str) for v in notes.values()):
        return notes
    notes = _notes_in(archive)
    with contextlib.suppress(OSError):  # a read-only cache: the next run reads the archive
        write_atomic(kept, json.dumps(notes))
    return notes


def sdist(release: Release, log: Path | None = None) -> Path:
    """The release's sdist, downloaded the first time it is asked for."""
    folder = release.venv / SDIST_DIR
    with file_lock(release.venv / f"{SDIST_DIR}.lock"):  # two runs sharing the cache
        found = sorted(folder.glob("*.tar.gz"))
        if found:
            return found[0]
        with tempfile.TemporaryDirectory(dir=release.venv) as scratch:
            cmd = [str(release.python), "-m", "pip", "download", "--no-deps", "--no-binary",
                   ":all:", f"{PACKAGE}=={release.version}", "-d", scratch]
            run(ExecuteRequest(cmd, timeout=DOWNLOAD_TIMEOUT, log=log)).assert_success(
                f"downloading the {PACKAGE} {release.version} sdist for its release notes")
            downloaded = sorted(Path(scratch).glob("*.tar.gz"))
            if not downloaded:
                raise EnvironmentProblem(f"no sdist of {PACKAGE} {release.version} was "
                                         "downloaded")
            folder.mkdir(exist_ok=True)
            return Path(shutil.move(str(downloaded[0]), folder / downloaded[0].name))


def _notes_in(archive: Path) -> dict[str, str]:
    notes: dict[str, str] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                path = PurePosixPath(member.name)
                if member.isfile() and path.suffix == ".yaml" and \
                        path.parent.parts[-2:] == NOTES.parts:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        notes[path.name] = handle.read().decode("utf-8", errors="replace")
    except (OSError, tarfile.TarError) as exc:
        raise EnvironmentProblem(f"cannot read the release notes in {archive}: {exc}") from exc
    return dict(sorted(notes.items()))
