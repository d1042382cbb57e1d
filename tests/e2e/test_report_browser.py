"""report.html in a real headless browser (Debian ``chromium``).

The page must load without console errors (its own script then marks ``<body data-ok="yes">``)
and show the verdict, the timeline chart, the findings and the inventory. Each screenshot is
kept in ``.grenadier/artifacts/`` under the repository root for a person to look at.

The real run is the session's default run, or the run directory named by
``GRENADIER_TEST_RUN_DIR`` (copied first: rendering writes report.html).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grenadier.report.html import render_html
from tests.e2e.conftest import ROOT
from tests.helpers.run_dirs import craft_run, inventory

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".grenadier" / "artifacts"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
#: console lines chromium logs for a page that broke: script errors, blocked loads
BAD_CONSOLE = re.compile(r"Uncaught|Refused|Failed to load|net::ERR_")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed (/usr/bin/chromium): apt-get install -y chromium")


@dataclass
class Browsed:
    dom: str
    console: list[str]
    screenshot: Path | None


def _chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # A new empty profile each time: nothing from an earlier run (cache, crash state) leaks in.
    profile = tempfile.mkdtemp(dir=tmp, prefix="chromium-profile-")
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def browse(page: Path, tmp: Path, keep_as: str | None = None) -> Browsed:
    """The DOM after the page's script ran, its console lines, and (kept) a screenshot."""
    dump = _chromium(page, tmp, "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert dump.returncode == 0, dump.stderr[-3000:]
    console = [line for line in dump.stderr.splitlines() if ":CONSOLE" in line]
    if keep_as is None:
        return Browsed(dump.stdout, console, None)
    shot = tmp / "report-screenshot.png"
    snap = _chromium(page, tmp, "--window-size=1280,2600", f"--screenshot={shot}")
    assert snap.returncode == 0, snap.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTIFACTS / f"report-screenshot-{keep_as}.png"
    shutil.copyfile(shot, kept)
    return Browsed(dump.stdout, console, kept)


def assert_page_works(seen: Browsed) -> None:
    assert not [line for line in seen.console if BAD_CONSOLE.search(line)], seen.console
    assert re.search(r'<body[^>]* data-ok="yes"', seen.dom), "the page's check script did not run"
    assert re.search(r'<section id="verdict" class="verdict (ok|bad|unknown)">', seen.dom)
    assert re.search(r'<svg class="chart"[^>]*>.*<rect class="bar-', seen.dom, re.S)
    assert '<section id="findings">' in seen.dom
    assert '<table class="inv">' in seen.dom
    assert '<section id="files">' in seen.dom


def test_crafted_failed_run_in_browser(tmp_path: Path) -> None:
    after = inventory("grenadier-evolve", "grenadier-new", status="UPDATE_COMPLETE")
    page = render_html(craft_run(tmp_path / "run", failed=True, after=after))
    seen = browse(page, tmp_path, keep_as="crafted")
    assert_page_works(seen)
    assert "upgrade BROKE something" in seen.dom
    assert seen.dom.count('<article class="finding') >= 6
    assert '<tr class="gone">' in seen.dom
    assert seen.screenshot is not None
    print(f"screenshot: {seen.screenshot}")


def test_injected_markup_stays_text_in_browser(tmp_path: Path) -> None:
    page = render_html(craft_run(tmp_path / "run", failed=True, evil=True))
    seen = browse(page, tmp_path)
    assert_page_works(seen)
    assert "<img" not in seen.dom
    assert seen.dom.count("<script") == 1
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in seen.dom


def test_partial_run_in_browser(tmp_path: Path) -> None:
    run_dir = craft_run(tmp_path / "run")
    (run_dir / "report.json").write_text("{ truncated")
    seen = browse(render_html(run_dir), tmp_path)
    assert_page_works(seen)
    assert "report.json is corrupt" in seen.dom


def _real_run_dir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    given = os.environ.get("GRENADIER_TEST_RUN_DIR")
    if given:
        copy = tmp_path / Path(given).name
        # db/ and snapshot/ are large and not shown; sockets in db/ cannot be copied anyway
        shutil.copytree(given, copy, symlinks=True,
                        ignore=shutil.ignore_patterns("db", "snapshot", "*.lock", "*.sock*"))
        return copy, "run-dir"
    run = request.getfixturevalue("default_run")
    assert (run.run_dir / "report.json").is_file(), \
        f"the default run left no report.json in {run.run_dir}:\n{run.err[-3000:]}"
    return run.run_dir, "default-run"


def test_real_run_in_browser(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    run_dir, name = _real_run_dir(request, tmp_path)
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    seen = browse(render_html(run_dir), tmp_path, keep_as=name)
    assert_page_works(seen)
    assert f'<div class="big">{report["verdict"]}</div>' in seen.dom
    assert seen.dom.count('<rect class="bar-') == len(report["steps"])
    assert "<tr" in seen.dom.split('<table class="inv">', 1)[1]
    print(f"screenshot: {seen.screenshot}")
