"""Secrets are generated per run, kept 0600, and never shown in reports or on the console."""

from __future__ import annotations

import json
import stat

from tests.e2e.conftest import Run

REPORTS = ("report.json", "report.html", "junit.xml", "impact.md", "run.json")


def _secrets(run: Run) -> list[str]:
    data = json.loads((run.run_dir / "etc" / "secrets.json").read_text())
    values = [str(v) for k, v in data.items() if k not in ("project", "user")]
    assert values, "the run generated no secret"
    return values


def test_secret_files_are_private(default_run: Run) -> None:
    for name in ("secrets.json", "heat.conf"):
        mode = (default_run.run_dir / "etc" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name


def test_secrets_never_in_reports_or_console(default_run: Run) -> None:
    texts = {"console": default_run.out + default_run.err}
    for name in REPORTS:
        path = default_run.run_dir / name
        if path.is_file():
            texts[name] = path.read_text(errors="replace")
    for path in (default_run.run_dir / "junit").glob("*.xml"):
        texts[path.name] = path.read_text(errors="replace")
    for secret in _secrets(default_run):
        leaks = [name for name, text in texts.items() if secret in text]
        assert leaks == [], f"a secret appears in {leaks}"


def test_services_listen_on_loopback_only(default_run: Run) -> None:
    conf = (default_run.run_dir / "etc" / "heat.conf").read_text()
    assert "bind_host = 127.0.0.1" in conf
    assert "host=" in json.loads((default_run.run_dir / "db.json").read_text())["url"], \
        "the embedded PostgreSQL listens on a unix socket, not TCP"
