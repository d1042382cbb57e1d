"""Through the real CLI: a user's config setting an option the target dropped."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import BASE, TARGET, Run, grenadier


def _upgrade_findings(run: Run, check: str) -> list[dict[str, str]]:
    return [f for f in run.steps()["upgrade"]["findings"]  # type: ignore[union-attr]
            if f["check"] == check]


def test_user_config_setting_a_removed_option_fails_with_file_and_line(
        tmp_path: Path, workdir: Path, cache_dir: Path) -> None:
    conf = tmp_path / "my-heat.conf"
    conf.write_text("[DEFAULT]\nnum_engine_workers = 1\n\n[clients_vitrage]\ninsecure = true\n")
    run = grenadier("run", "--base", BASE, "--target", TARGET, "--config", str(conf),
                    "--stop-after", "upgrade", "--no-builtin-suite",
                    workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 1, run.err[-3000:]
    ignored = [f for f in _upgrade_findings(run, "config-file") if f["severity"] == "error"]
    assert len(ignored) == 1, ignored
    assert f"{conf}:5 [clients_vitrage] insecure" in ignored[0]["where"]
    assert "27.0.1 ignores" in ignored[0]["what"]
    release_level = _upgrade_findings(run, "config-options")
    assert any("[clients_vitrage] insecure" in f["what"] for f in release_level)


def test_deprecation_warnings_of_the_target_are_counted(default_run: Run) -> None:
    findings = default_run.steps()["teardown"]["findings"]  # type: ignore[union-attr]
    warnings = [f for f in findings if f["check"] == "deprecation-warnings"]
    assert warnings, "the target logged no deprecation warning on the old config"
    assert all(f["found"].endswith("time(s)") for f in warnings)
    assert (default_run.run_dir / "impact.md").is_file()
