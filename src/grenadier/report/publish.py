"""A run directory, and what every command that leaves one writes into it at its end.

``run``, ``check db`` and a control run's relabelling share these: the directory's name and
its reports (report.json, junit.xml, report.html), written so that a full disk or a page that
cannot render is said on the console and never changes the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grenadier.errors import GrenadierError
from grenadier.host import safe_name, unique_dir
from grenadier.model.result import StepResult
from grenadier.releases.spec import PACKAGE
from grenadier.report.files import write_json, write_junit
from grenadier.report.html import render_html


def _slug(text: str) -> str:
    # a source tree by its folder name; a pin without its package name (as the matrix gives)
    name = Path(text).name if "/" in text else text.removeprefix(f"{PACKAGE}==")
    return safe_name(name, 40) or "release"


def new_run_dir(workdir: Path, base: str, target: str) -> Path:
    """A fresh ``runs/<time>-<base>-to-<target>`` under ``workdir`` (``base`` as given when it
    is no release, e.g. ``check-db``)."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(base)}-to-{_slug(target)}"
    return unique_dir(workdir / "runs", name, "run directory")


def publish(run_dir: Path, header: Mapping[str, Any], results: Sequence[StepResult],
            extra: Mapping[str, Any] | None, *, say: Callable[[str], None],
            title: str = "") -> None:
    """report.json (unless ``extra`` is None: it is already written), junit.xml (its suites
    named ``title``, by default base -> target) and report.html."""
    title = title or f"grenadier {header.get('base')} -> {header.get('target')}"
    try:
        if extra is not None:
            write_json(run_dir, header, results, extra)
        write_junit(run_dir, title, results)
    except OSError as exc:  # a full disk or read-only run directory must not hide the verdict
        say(f"reports not written in {run_dir}: {exc.strerror}")
        return
    try:
        render_html(run_dir)
    except (GrenadierError, OSError) as exc:  # the page is for people: never the verdict
        say(f"report.html not written: {exc}")
