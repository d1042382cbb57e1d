"""Through the real CLI: the pair with three migrations on every backend, and crafted
broken targets (patched copies of a real Heat source tree) failing the run as they should."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grenadier.model.steps import STEPS
from tests.e2e.conftest import Run, grenadier, heat_processes
from tests.helpers import crafted

REVISIONS = {
    "d2db381e3324": "Add extra_data column to sync_point table",
    "88be64598c0f": "Add resource_snapshot table",
    "97b2a986f922": "make snapshot state aware",
}


def _needs(kind: str) -> None:
    if kind == "mariadb" and not shutil.which("mariadbd"):
        pytest.skip("mariadb-server is not installed (apt-get install mariadb-server)")


def _findings(run: Run, check: str) -> list[dict[str, str]]:
    steps = run.steps()
    return [f for f in steps["upgrade"]["findings"]  # type: ignore[union-attr]
            if f["check"] == check and f["severity"] == "error"]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite", "mariadb"])
def test_three_migrations_green_on_every_backend(kind: str, workdir: Path,
                                                 cache_dir: Path) -> None:
    _needs(kind)
    run = grenadier("run", "--base", "25.0.2", "--target", "26.0.2", "--db", kind,
                    workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 0, run.err[-3000:]
    assert run.status() == dict.fromkeys(STEPS, "passed")
    if kind == "sqlite":
        assert (run.run_dir / "db" / "heat.sqlite").is_file()
    facts = run.report["facts"]
    revisions = {r["revision"]: r for r in facts["revisions"]}  # type: ignore[index]
    assert set(revisions) == set(REVISIONS)
    for revision, title in REVISIONS.items():
        assert revisions[revision]["title"] == title
        assert float(revisions[revision]["duration_s"]) >= 0.0
    assert heat_processes(run.run_dir) == []


def _broken_run(tree: Path, workdir: Path, cache_dir: Path) -> Run:
    # Stopping after the upgrade step keeps each crafted case to the steps it concerns.
    return grenadier("run", "--base", "25.0.2", "--target", str(tree), "--stop-after",
                     "upgrade", workdir=workdir, cache_dir=cache_dir)


def test_migration_deleting_rows_fails_data_preserved(tree: Path, workdir: Path,
                                                      cache_dir: Path) -> None:
    crafted.patch_delete_rows(tree, table="event")
    run = _broken_run(tree, workdir, cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    assert run.status()["upgrade"] == "failed"
    lost = _findings(run, "data-preserved")
    assert any("rows of table event lost" in f["what"] for f in lost), lost


def test_model_column_without_migration_fails_schema_drift(tree: Path, workdir: Path,
                                                           cache_dir: Path) -> None:
    crafted.patch_model_column(tree, table="stack", column="grenadier_drift")
    run = _broken_run(tree, workdir, cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    drift = _findings(run, "schema-drift")
    assert any("stack.grenadier_drift" in f["what"] for f in drift), drift


def test_raising_migration_fails_with_error_and_restore_command(tree: Path, workdir: Path,
                                                                cache_dir: Path) -> None:
    crafted.patch_raising_migration(tree)
    run = _broken_run(tree, workdir, cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    failed = _findings(run, "migration")
    assert failed, run.steps()["upgrade"]
    assert "crafted migration failure" in failed[0]["found"]
    assert "restore" in failed[0]["remedy"]
    assert "heat.pgdump" in failed[0]["remedy"]
