"""Secrets are generated per run, kept 0600, and never shown in reports, logs or on the
console: only etc/ and the run's credential files hold them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.e2e.conftest import KeptRun, Run

REPORTS = ("report.json", "report.html", "junit.xml", "impact.md", "run.json")
#: the only files of a run directory that may hold a secret grenadier generated (besides etc/):
#: each is owner-only, and none is meant to be published
CREDENTIAL_FILES = ("db.json", "db/postgresql.json", "db/pgpass", "db/mariadb.json",
                    "rabbitmq/credentials.json", "rabbitmq/rabbitmq.conf",
                    "keystone/credentials.json")


def _values(data: object) -> list[str]:
    if isinstance(data, dict):
        return [v for item in data.values() for v in _values(item)]
    if isinstance(data, list):
        return [v for item in data for v in _values(item)]
    return [data] if isinstance(data, str) else []


def generated_secrets(run_dir: Path) -> dict[str, str]:
    """secret -> the file that keeps it: every password and key grenadier made for the run."""
    found = {}
    identity = json.loads((run_dir / "etc" / "secrets.json").read_text())
    found[identity["auth_encryption_key"]] = "etc/secrets.json"
    for name, keys in (("db/postgresql.json", ("admin_password", "heat_password")),
                       ("db/mariadb.json", ("password",)),
                       ("rabbitmq/credentials.json", ("password",))):
        if (run_dir / name).is_file():
            data = json.loads((run_dir / name).read_text())
            found.update({data[key]: name for key in keys})
    keystone = run_dir / "keystone" / "credentials.json"
    if keystone.is_file():
        data = json.loads(keystone.read_text())
        for account in ("admin", "service", "tests"):
            found[data[account]["password"]] = "keystone/credentials.json"
        found[data["stack_domain_admin_password"]] = "keystone/credentials.json"
    assert all(len(secret) >= 16 for secret in found), "a secret too short to grep for"
    return found


def holders(run_dir: Path, secrets: list[str]) -> dict[str, list[str]]:
    """secret -> every file of the run directory that holds it (binary files included)."""
    found: dict[str, list[str]] = {secret: [] for secret in secrets}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for secret in secrets:
            if secret.encode() in data:
                found[secret].append(str(path.relative_to(run_dir)))
    return found


def _allowed(name: str) -> bool:
    return name.startswith("etc/") or name in CREDENTIAL_FILES


def test_secret_files_are_private(default_run: Run) -> None:
    for name in ("secrets.json", "heat.conf"):
        mode = (default_run.run_dir / "etc" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name
    for name in CREDENTIAL_FILES:
        path = default_run.run_dir / name
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, name


def test_secrets_never_in_reports_or_console(default_run: Run) -> None:
    texts = {"console": default_run.out + default_run.err}
    for name in REPORTS:
        path = default_run.run_dir / name
        if path.is_file():
            texts[name] = path.read_text(errors="replace")
    for path in (default_run.run_dir / "junit").glob("*.xml"):
        texts[path.name] = path.read_text(errors="replace")
    for secret in generated_secrets(default_run.run_dir):
        leaks = [name for name, text in texts.items() if secret in text]
        assert leaks == [], f"a secret appears in {leaks}"


@pytest.mark.parametrize("which", ["default_run", "postgres_kept", "mariadb_rabbit_kept",
                                   "keystone_run"])
def test_only_etc_and_credential_files_hold_a_generated_secret(
        which: str, request: pytest.FixtureRequest) -> None:
    """Every file of the run is read, logs, dumps and databases included."""
    value = request.getfixturevalue(which)
    run: Run = value.run if isinstance(value, KeptRun) else value
    assert run.returncode == 0, run.err[-3000:]
    secrets = generated_secrets(run.run_dir)
    found = holders(run.run_dir, list(secrets))
    for secret, kept_in in secrets.items():
        assert kept_in in found[secret], f"the grep did not even find {kept_in}"
        leaks = [name for name in found[secret] if not _allowed(name)]
        assert leaks == [], f"the secret of {kept_in} is also in {leaks}"
    assert secrets.keys().isdisjoint(run.out + run.err)


def test_secrets_of_a_users_config_are_masked_everywhere(postgres_kept: KeptRun) -> None:
    """A --config with a secret option (under its deprecated name), an unknown password and a
    URL with a password and a ?password= query: the config findings show them masked, and
    nothing of the run directory, nor the console, holds them."""
    run = postgres_kept.run
    assert run.returncode == 0, run.err[-3000:]
    found = holders(run.run_dir, list(postgres_kept.secrets.values()))
    assert {secret: where for secret, where in found.items() if where} == {}
    assert not any(secret in run.out + run.err for secret in postgres_kept.secrets.values())
    shown = [line for f in run.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
             if f["check"] == "config-file" for line in (f["what"], f["found"])]
    text = "\n".join(shown)
    assert "memcache_password = ***" in text, text
    assert "rabbit_password = ***" in text, text
    assert "auth_uri = http://heat:***@127.0.0.1:5000/v3?password=***" in text, text
