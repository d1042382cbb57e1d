"""The scale generator, small: real stacks through Heat 25.0.2, multiplied in SQL, dumped, and
the dump rehearsed by ``grenadier check db`` to 26.0.2.

benchmarks/make_heat_db.py builds the production-sized databases the check-db benchmark
measures; here 50 real root stacks become 2,000, so that every stage runs in CI in a few
minutes: the copies must keep every reference whole, and the rehearsal must find every row of
every table again after the migration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import OLDEST, ROOT, grenadier

pytestmark = pytest.mark.e2e

GENERATOR = ROOT / "benchmarks" / "make_heat_db.py"
REAL, STACKS = 50, 2000


@pytest.fixture(scope="module")
def generated(cache_dir: Path) -> Iterator[tuple[dict[str, object], Path]]:
    """make_heat_db.py's report and dump for PostgreSQL (the servers are its own)."""
    out = Path(tempfile.mkdtemp(prefix="grenadier-heatdb-"))
    out.chmod(0o755)
    cmd = [sys.executable, str(GENERATOR), "--stacks", str(STACKS), "--real", str(REAL),
           "--db", "postgresql", "--base", OLDEST, "--out", str(out), "--workdir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False,
                          env={**os.environ, "GRENADIER_CACHE": str(cache_dir)},
                          cwd=ROOT / "benchmarks")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((out / f"heat-postgresql-{STACKS}.json").read_text())
    yield report, Path(str(report["dump"]))
    subprocess.run(["rm", "-rf", str(out)], check=False)


def test_the_copies_keep_every_reference_whole(generated: tuple[dict[str, object], Path]
                                               ) -> None:
    report, dump = generated
    multiplied = report["multiply"]
    assert isinstance(multiplied, dict)
    assert multiplied["factor"] == STACKS // multiplied["root_stacks_real"]
    for reference, orphans in multiplied["orphans_after"].items():
        assert orphans == multiplied["orphans_before"][reference] * multiplied["factor"], \
            reference
    real, counts = report["counts_real"], report["counts"]
    assert isinstance(real, dict)
    assert isinstance(counts, dict)
    for table in ("stack", "resource", "event", "raw_template", "software_deployment",
                  "snapshot", "stack_tag"):
        assert real[table] > 0, table  # every kind of row was made by the real Heat
        assert counts[table] == real[table] * multiplied["factor"], table
    assert counts["service"] == real["service"]  # the engine's own row is not copied
    assert dump.stat().st_size > 0


def test_check_db_on_the_dump_finds_every_row_again(
        generated: tuple[dict[str, object], Path], cache_dir: Path) -> None:
    report, dump = generated
    workdir = Path(tempfile.mkdtemp(prefix="grenadier-checkdb-"))
    workdir.chmod(0o755)
    try:
        result = grenadier("check", "db", "--db-dump", str(dump), "--target", "26.0.2",
                           "--workdir", str(workdir), workdir=workdir, cache_dir=cache_dir,
                           timeout=1200)
        assert result.returncode == 0, (result.out + result.err)[-3000:]
        data = result.report["facts"]["data"]  # type: ignore[index]
        counts = report["counts"]
        assert isinstance(counts, dict)
        for table, rows in counts.items():
            if table == "alembic_version":
                continue
            assert data[table]["before"] == data[table]["after"] == rows, table
            assert data[table]["lost"] == data[table]["changed"] == 0, table
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
