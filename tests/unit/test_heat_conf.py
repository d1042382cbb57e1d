"""Unit tests for grenadier.plugins.heat.conf (no Heat needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grenadier.plugins.heat import conf
from tests.helpers.heat_conf import heat_conf_params, parse_ini


def test_heat_conf_has_the_options_single_process_heat_needs(tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path)))
    default = parsed["DEFAULT"]
    assert default["host"] == "grenadier-engine"
    assert default["transport_url"] == "fake://"
    assert default["auth_encryption_key"] == "k" * 32
    assert default["keystone_backend"] == conf.FAKE_KEYSTONE_BACKEND
    assert default["deferred_auth_method"] == "password"
    assert default["convergence_engine"] == "true"
    assert int(default["periodic_interval"]) <= 10
    assert default["log_file"] == str(tmp_path / "heat.log")
    assert parsed["paste_deploy"]["flavor"] == "noauth"
    assert parsed["paste_deploy"]["api_paste_config"] == str(tmp_path / "api-paste.ini")
    assert parsed["noauth"]["token_response"] == str(tmp_path / "token.json")
    assert parsed["heat_api"]["bind_host"] == "127.0.0.1"
    assert parsed["heat_api"]["bind_port"] == "18004"
    assert parsed["database"]["connection"].startswith("postgresql+psycopg2://")
    assert not parsed.has_section("oslo_policy")


def test_no_policy_overrides_the_token_roles_satisfy_the_defaults(tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path)))
    assert not parsed.has_section("oslo_policy")
    roles = {r["name"] for r in json.loads(conf.render_token(18004, "p", "u"))["token"]["roles"]}
    assert {"member", "reader"} <= roles  # what Heat's new rule defaults ask for


def test_split_noauth_accepts_the_legacy_policy_defaults_without_a_policy_file(
        tmp_path: Path) -> None:
    parsed = parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path, split_noauth=True)))
    section = parsed["oslo_policy"]
    own = {key: section[key] for key in set(section) - set(parsed.defaults())}
    assert own == {"enforce_new_defaults": "false", "enforce_scope": "false"}


def test_values_are_written_as_they_are(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://heat:p%40ss%y@/heat?host=/tmp/pg"
    assert parse_ini(conf.render_heat_conf(heat_conf_params(tmp_path, db_url=url)))["database"][
        "connection"] == url  # no interpolation of '%'


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth_encryption_key": "short"}, "32 characters"),
        ({"log_file": Path("relative.log")}, "absolute"),
        ({"db_url": "sqlite:///a\nb"}, "newline"),
    ],
)
def test_invalid_params_are_refused(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        conf.render_heat_conf(heat_conf_params(tmp_path, **overrides))


def test_auth_encryption_key_is_32_random_characters() -> None:
    keys = {conf.new_auth_encryption_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(key) == 32 and key.isalnum() for key in keys)


def test_token_is_a_keystone_v3_token_with_the_catalog(tmp_path: Path) -> None:
    token = json.loads(conf.render_token(18004, "proj1", "demo"))["token"]
    assert token["project"]["id"] == "proj1"
    assert token["user"]["name"] == "demo"
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert token["expires_at"] > "2090"
    catalog = {service["type"]: service for service in token["catalog"]}
    assert set(catalog) == {"orchestration", "cloudformation", "identity"}
    for service in catalog.values():
        assert {e["interface"] for e in service["endpoints"]} == {"public", "internal", "admin"}
        assert all(e["url"].startswith("http://127.0.0.1:18004/") for e in service["endpoints"])
    assert catalog["orchestration"]["endpoints"][0]["url"] == "http://127.0.0.1:18004/v1/proj1"


def test_api_paste_ini_found_in_venv_etc(tmp_path: Path) -> None:
    paste = tmp_path / "etc" / "heat" / "api-paste.ini"
    paste.parent.mkdir(parents=True)
    paste.write_text("[composite:heat-api]\n")
    assert conf.api_paste_ini(tmp_path) == paste


def test_api_paste_ini_found_through_the_wheel_record(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    record = site / "openstack_heat-27.0.1.dist-info" / "RECORD"
    record.parent.mkdir(parents=True)
    paste = tmp_path / "elsewhere" / "etc" / "heat" / "api-paste.ini"
    paste.parent.mkdir(parents=True)
    paste.write_text("[composite:heat-api]\n")
    record.write_text("../../../elsewhere/etc/heat/api-paste.ini,sha256=x,1\n")
    assert conf.api_paste_ini(tmp_path) == paste.resolve()


def test_api_paste_ini_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"api-paste\.ini"):
        conf.api_paste_ini(tmp_path)
