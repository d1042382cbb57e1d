"""Config checks and the Upgrade Impact report against real installed Heat releases.

Release venvs come from GRENADIER_TEST_RELEASES_25 / _26 / _27 (paths to venvs holding
openstack-heat 25.0.2, 26.0.2, 27.0.1); a test whose venv is not given is skipped. Options are
cached in each venv, so only the first run pays the generator (about 3 s per release).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grenadier.checks.config.diff import ConfigDiff, OptionChange, diff_findings, diff_inventories
from grenadier.checks.config.inventory import Inventory, cache_path, load_inventory
from grenadier.checks.config.oldconf import check_config_files, collect_deprecation_warnings
from grenadier.execute import ExecuteRequest, run
from grenadier.releases.release import Release
from grenadier.report.impact import build_impact, render_impact
from tests.e2e.conftest import release

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def r25() -> Release:
    return release(25)


@pytest.fixture(scope="module")
def r26() -> Release:
    return release(26)


@pytest.fixture(scope="module")
def r27() -> Release:
    return release(27)


def _of_kind(diff: ConfigDiff, kind: str, *, heat: bool | None = None) -> list[OptionChange]:
    return [c for c in diff.changes if c.kind == kind and (heat is None or c.is_heat == heat)]


def test_26_to_27_options(r26: Release, r27: Release) -> None:
    diff = diff_inventories(load_inventory(r26), load_inventory(r27))
    silent = {c.label for c in _of_kind(diff, "removed-without-notice", heat=True)}
    assert silent == {f"[clients_vitrage] {n}"
                      for n in ("ca_file", "cert_file", "endpoint_type", "insecure", "key_file")}
    after = {c.label for c in _of_kind(diff, "removed-after-deprecation", heat=True)}
    assert after == {"[ec2authtoken] auth_uri", "[ec2authtoken] allowed_auth_uris"}
    [default] = [c for c in _of_kind(diff, "default-changed")
                 if c.label == "[clients] endpoint_type"]
    assert default.detail == "publicURL -> public"

    findings = diff_findings(diff)
    by_kind: dict[str, set[str]] = {}
    for finding in findings:
        by_kind.setdefault(finding.kind, set()).add(f"{finding.severity} {finding.where}")
    assert by_kind["removed-without-notice"] == {f"error {label}" for label in silent}
    # the libraries' options too (which ones depends on the venvs' constraints), all as notes
    every_after = {c.label for c in _of_kind(diff, "removed-after-deprecation")}
    assert after < every_after
    assert by_kind["removed-after-deprecation"] == {f"info {label}" for label in every_after}
    assert findings[0].severity == "error"  # findings worst first


def test_25_to_26_impact_lists_the_three_migrations(r25: Release, r26: Release) -> None:
    impact = build_impact(r25, r26)
    assert [m.revision for m in impact.migrations] == [
        "d2db381e3324", "88be64598c0f", "97b2a986f922"]
    assert impact.base_head == "c6214ca60943"
    assert impact.migrations[0].down_revision == "c6214ca60943"
    assert all(m.title for m in impact.migrations)
    for fmt in ("md", "rst"):
        text = render_impact(impact, fmt)
        assert "Upgrade Impact" in text
        assert all(rev in text for rev in ("d2db381e3324", "88be64598c0f", "97b2a986f922"))


def test_26_to_27_impact(r26: Release, r27: Release) -> None:
    impact = build_impact(r26, r27)
    assert impact.migrations == ()
    assert impact.base_head == impact.target_head == "97b2a986f922"
    assert dict((api, (old, new)) for api, old, new in impact.rpc)["engine"] == ("1.36", "1.36")
    text = render_impact(impact, "md")
    # findings come first, before the tables
    assert text.index("removed without notice") < text.index("Database migrations")
    assert "[clients_vitrage] insecure" in text


def test_old_config_setting_a_removed_option(tmp_path: Path, r26: Release, r27: Release) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("[DEFAULT]\ndebug = true\n\n[clients_vitrage]\ninsecure = true\n",
                    encoding="utf-8")
    findings = check_config_files([conf], load_inventory(r27), load_inventory(r26))
    [finding] = findings
    assert finding.where == f"{conf}:5 [clients_vitrage] insecure"
    assert finding.severity == "error"
    assert "ignores" in finding.what
    # the base release itself still knows it: nothing to report there
    assert check_config_files([conf], load_inventory(r26)) == []


def test_crafted_target_with_an_option_deleted(tmp_path: Path, r26: Release) -> None:
    load_inventory(r26)  # make sure the cache exists
    cached = json.loads(cache_path(r26).read_text(encoding="utf-8"))
    copy = tmp_path / "options.json"
    copy.write_text(json.dumps(cached), encoding="utf-8")
    data = json.loads(copy.read_text(encoding="utf-8"))["inventory"]
    base = Inventory.from_dict(data)
    assert diff_inventories(base, Inventory.from_dict(data)).changes == ()  # quiet when clean
    data["options"] = [o for o in data["options"]
                       if (o["group"], o["name"]) != ("DEFAULT", "num_engine_workers")]
    [change] = diff_inventories(base, Inventory.from_dict(data)).changes
    assert (change.kind, change.label) == ("removed-without-notice", "[DEFAULT] num_engine_workers")


def test_deprecation_warnings_from_a_real_heat_manage(tmp_path: Path, r27: Release) -> None:
    conf = tmp_path / "heat.conf"
    conf.write_text(f"[DEFAULT]\nlogdir = {tmp_path}\n[database]\n"
                    f"connection = sqlite:///{tmp_path}/heat.sqlite\n", encoding="utf-8")
    log = tmp_path / "heat-manage.log"
    outcome = run(ExecuteRequest([str(r27.bin("heat-manage")), "--config-file", str(conf),
                                  "db_version"], log=log, timeout=120))
    assert outcome.ok, outcome.err
    counts = collect_deprecation_warnings([log])
    expected = ('oslo_config.cfg: Deprecated: Option "logdir" from group "DEFAULT" is '
                'deprecated. Use option "log-dir" from group "DEFAULT".')
    assert counts.get(expected) == 1, counts
