"""The two configuration checks a run executes, on crafted inventories and config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grenadier.checks.api import CheckContext
from grenadier.checks.config import announced, checks
from grenadier.checks.config.inventory import Inventory, OptionInfo
from grenadier.releases import Release


def opt(group: str, name: str, **kw: Any) -> OptionInfo:
    kw.setdefault("type", "string value")
    return OptionInfo(group=group, name=name, **kw)


COMMON = (opt("DEFAULT", "debug", type="boolean value"), opt("database", "connection"))
BASE = Inventory("26.0.2", (*COMMON, opt("clients_vitrage", "insecure")))
TARGET = Inventory("27.0.1", COMMON)


class FakeProject:
    name = "heat"
    harness_options = frozenset({("heat_api", "bind_port")})

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def config_files(self, deployment: object) -> list[Path]:
        return self.files


class FakeDeployment:
    def __init__(self, logs: Path) -> None:
        self.logs = logs


def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: Inventory,
            target: Inventory, conf: str, *, kind: str = "pypi",
            notes: dict[str, str] | None = None) -> CheckContext:
    """Both releases' inventories and the target's release notes (``kind``: ``local`` is a
    source tree, the patch under review)."""
    releases = {role: Release(inventory.release, inventory.release, tmp_path / role,
                              kind if role == "target" else "pypi")
                for role, inventory in (("base", base), ("target", target))}
    inventories = {"base": base, "target": target}
    monkeypatch.setattr(checks, "load_inventory",
                        lambda release, log: inventories[release.venv.name])
    monkeypatch.setattr(announced, "release_notes", lambda release, log: notes or {})
    path = tmp_path / "heat.conf"
    path.write_text(conf)
    return CheckContext(run_dir=tmp_path, base=releases["base"], target=releases["target"],
                        project=FakeProject([path]),  # type: ignore[arg-type]
                        deployment=FakeDeployment(tmp_path),  # type: ignore[arg-type]
                        state=None)  # type: ignore[arg-type]


def test_config_options_reports_a_silent_removal_as_a_warning_in_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, "[DEFAULT]\ndebug = true\n")
    [finding] = checks.config_options(ctx)
    assert (finding.kind, finding.severity) == ("removed-without-notice", "warning")
    assert finding.where == "[clients_vitrage] insecure"


VITRAGE_REMOVED = "---\nupgrade:\n  - |\n    Integration with vitrage has been removed.\n"
VITRAGE_DEPRECATED = "---\ndeprecations:\n  - |\n    OS::Vitrage::Template is deprecated.\n"
UNRELATED = "---\nfixes:\n  - |\n    The insecure option of [clients_nova] is removed.\n"


def test_a_silent_removal_says_which_release_notes_announced_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = {"a-unrelated.yaml": UNRELATED, "deprecate-vitrage-1.yaml": VITRAGE_DEPRECATED,
             "remove-vitrage-2.yaml": VITRAGE_REMOVED}
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, "", notes=notes)
    [finding] = checks.config_options(ctx)
    assert finding.severity == "warning"
    assert finding.found == ("absent from 27.0.1, not deprecated in 26.0.2; announced in the "
                             "release notes: remove-vitrage-2.yaml, deprecate-vitrage-1.yaml")
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, "", notes={"a.yaml": UNRELATED})
    [finding] = checks.config_options(ctx)
    assert finding.found.endswith("; no release note of 27.0.1 announces it")


def test_a_silent_removal_in_a_patch_under_review_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, "", kind="local")
    [finding] = checks.config_options(ctx)
    assert (finding.kind, finding.severity) == ("removed-without-notice", "error")
    library = Inventory("26.0.2", (*COMMON, opt("oslo_x", "gone", owner="oslo.x")))
    ctx = context(tmp_path, monkeypatch, library, TARGET, "", kind="local")
    # a library's option is the installed library's doing, not the patch's
    assert [f.severity for f in checks.config_options(ctx)] == ["warning"]


def test_config_options_quiet_on_a_clean_pair(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, monkeypatch, TARGET, TARGET, "[DEFAULT]\ndebug = true\n")
    assert checks.config_options(ctx) == []


def test_config_file_fires_on_an_ignored_option_and_skips_harness_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = "[heat_api]\nbind_port = 8004\n\n[clients_vitrage]\ninsecure = true\n"
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, conf)
    [finding] = checks.config_file(ctx)
    assert finding.severity == "error"
    assert finding.where == f"{tmp_path / 'heat.conf'}:5 [clients_vitrage] insecure"


def test_config_file_quiet_on_a_clean_file(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    conf = "[DEFAULT]\ndebug = true\n[heat_api]\nbind_port = 8004\n"
    assert checks.config_file(context(tmp_path, monkeypatch, BASE, TARGET, conf)) == []


def test_config_file_fires_on_a_setting_outside_any_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, monkeypatch, BASE, TARGET, "debug = true\n[DEFAULT]\n")
    findings = checks.config_file(ctx)
    assert [f.severity for f in findings] == ["error"]
    assert findings[0].what == "debug is outside any section"
    assert findings[0].where.endswith("heat.conf:1 [] debug")


DEPRECATED = ("2026-11-26 05:56:47.052 7722 WARNING oslo_config.cfg [-] Deprecated: Option "
              '"deferred_auth_method" from group "DEFAULT" is deprecated for removal.\n')
CLEAN = "2026-11-26 05:56:47.052 7722 INFO heat.engine.service [-] Starting engine\n"


def test_deprecation_warnings_counts_what_the_target_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "heat-target.log").write_text(CLEAN + DEPRECATED + DEPRECATED)
    (tmp_path / "heat-base.log").write_text(DEPRECATED)  # the base's own warnings don't count
    [finding] = checks.deprecation_warnings(context(tmp_path, monkeypatch, BASE, TARGET, ""))
    assert finding.check == "deprecation-warnings"
    assert finding.found == "2 time(s)"
    assert "deferred_auth_method" in finding.what


def test_deprecation_warnings_quiet_on_a_clean_log(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "heat-target.log").write_text(CLEAN)
    assert checks.deprecation_warnings(context(tmp_path, monkeypatch, BASE, TARGET, "")) == []
