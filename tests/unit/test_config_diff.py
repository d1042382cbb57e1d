"""The option diff fires on each kind of change and stays quiet on a clean pair."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from grenadier.checks.config import inventory as inventory_module
from grenadier.checks.config.diff import diff_findings, diff_inventories
from grenadier.checks.config.inventory import (
    Inventory,
    OptionInfo,
    cache_path,
    load_inventory,
    options_from_generator,
)
from grenadier.releases.release import Release


def opt(group: str, name: str, **kw: object) -> OptionInfo:
    kw.setdefault("type", "string value")
    return OptionInfo(group=group, name=name, **kw)  # type: ignore[arg-type]


def inv(label: str, *options: OptionInfo) -> Inventory:
    return Inventory(label, tuple(options))


BASE_OPTIONS = (
    opt("DEFAULT", "host", default="<Hostname>"),
    opt("clients", "endpoint_type", default="publicURL"),
    opt("DEFAULT", "num_engine_workers", type="integer value"),
)


def kinds(base: Inventory, target: Inventory) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for change in diff_inventories(base, target).changes:
        found.setdefault(change.kind, []).append(change.label)
    return found


def test_clean_pair_gives_no_change_and_no_finding() -> None:
    diff = diff_inventories(inv("a", *BASE_OPTIONS), inv("b", *BASE_OPTIONS))
    assert diff.changes == ()
    assert diff_findings(diff) == []


def test_removed_without_notice_is_an_error() -> None:
    base = inv("a", *BASE_OPTIONS, opt("clients_vitrage", "insecure", type="boolean value"))
    diff = diff_inventories(base, inv("b", *BASE_OPTIONS))
    [change] = diff.changes
    assert (change.kind, change.label) == ("removed-without-notice", "[clients_vitrage] insecure")
    [finding] = diff_findings(diff)
    assert finding.severity == "error"
    assert finding.where == "[clients_vitrage] insecure"
    assert finding.kind == "removed-without-notice"


def test_removal_after_deprecation_is_info() -> None:
    gone = opt("ec2authtoken", "auth_uri", deprecated_for_removal=True,
               deprecated_reason="Superseded by the endpoint_override option")
    diff = diff_inventories(inv("a", *BASE_OPTIONS, gone), inv("b", *BASE_OPTIONS))
    assert kinds(inv("a", *BASE_OPTIONS, gone), inv("b", *BASE_OPTIONS)) == {
        "removed-after-deprecation": ["[ec2authtoken] auth_uri"]}
    [finding] = diff_findings(diff)
    assert finding.severity == "info"
    assert "endpoint_override" in finding.found


def test_rename_is_not_a_removal() -> None:
    base = inv("a", opt("ec2authtoken", "ca_file"))
    target = inv("b", opt("ec2authtoken", "cafile", deprecated_opts=(("ec2authtoken", "ca_file"),)))
    diff = diff_inventories(base, target)
    [change] = diff.changes  # reported once: not also as "added"
    assert change.kind == "renamed"
    assert change.target is not None
    assert change.target.name == "cafile"
    assert [f.severity for f in diff_findings(diff)] == ["info"]


def test_rename_across_groups() -> None:
    base = inv("a", opt("DEFAULT", "rpc_thread_pool_size"))
    target = inv("b", opt("executor", "thread_pool_size",
                          deprecated_opts=(("DEFAULT", "rpc_thread_pool_size"),)))
    assert kinds(base, target) == {"renamed": ["[DEFAULT] rpc_thread_pool_size"]}


def test_dropped_alias_is_reported() -> None:
    base = inv("a", opt("DEFAULT", "stack_user_domain_id",
                        deprecated_opts=(("DEFAULT", "stack_user_domain"),)))
    target = inv("b", opt("DEFAULT", "stack_user_domain_id"))
    assert kinds(base, target) == {"alias-removed": ["[DEFAULT] stack_user_domain"]}


def test_kept_alias_is_quiet() -> None:
    kept = opt("DEFAULT", "stack_user_domain_id",
               deprecated_opts=(("DEFAULT", "stack_user_domain"),))
    assert kinds(inv("a", kept), inv("b", kept)) == {}


def test_added_option_is_listed_without_finding() -> None:
    base = inv("a", *BASE_OPTIONS)
    target = inv("b", *BASE_OPTIONS, opt("ec2authtoken", "clouds"))
    diff = diff_inventories(base, target)
    assert kinds(base, target) == {"added": ["[ec2authtoken] clouds"]}
    assert diff_findings(diff) == []


@pytest.mark.parametrize(
    ("old", "new", "kind", "detail"),
    [
        (opt("clients", "endpoint_type", default="publicURL"),
         opt("clients", "endpoint_type", default="public"),
         "default-changed", "publicURL -> public"),
        (opt("DEFAULT", "n", type="integer value"), opt("DEFAULT", "n", type="string value"),
         "type-changed", "integer value -> string value"),
        (opt("DEFAULT", "n", type="integer value"),
         opt("DEFAULT", "n", type="integer value", minimum="1"),
         "type-changed", "integer value -> integer value min=1"),
        (opt("clients", "endpoint_type"),
         opt("clients", "endpoint_type", choices=("public", "internal")),
         "choices-changed", "any value -> one of public, internal"),
        (opt("x", "mode", choices=("a", "b")), opt("x", "mode", choices=("a", "c")),
         "choices-changed", "dropped b; added c"),
        (opt("DEFAULT", "deferred_auth_method"),
         opt("DEFAULT", "deferred_auth_method", deprecated_for_removal=True,
             deprecated_reason="broken with keystone v3"),
         "newly-deprecated", "broken with keystone v3"),
        (opt("DEFAULT", "enable_stack_adopt", deprecated_for_removal=True),
         opt("DEFAULT", "enable_stack_adopt"),
         "deprecation-lifted", "no longer deprecated for removal"),
    ],
)
def test_each_change_of_a_kept_option(old: OptionInfo, new: OptionInfo, kind: str,
                                      detail: str) -> None:
    [change] = diff_inventories(inv("a", old), inv("b", new)).changes
    assert (change.kind, change.detail) == (kind, detail)


def test_dash_and_underscore_names_are_the_same_option() -> None:
    base = inv("a", opt("trustee", "auth-url"))
    target = inv("b", opt("trustee", "auth_url"))
    assert diff_inventories(base, target).changes == ()


def test_library_options_are_reported_apart_and_never_error() -> None:
    lib = opt("oslo_messaging_rabbit", "rabbit_ha_queues", owner="oslo.messaging")
    diff = diff_inventories(inv("a", *BASE_OPTIONS, lib), inv("b", *BASE_OPTIONS))
    assert diff.heat() == []
    assert [c.kind for c in diff.library()] == ["removed-without-notice"]
    assert diff.counts(heat=False) == {"removed-without-notice": 1}
    [finding] = diff_findings(diff)
    assert finding.severity == "warning"
    assert diff_findings(diff, include_library=False) == []


def test_heat_changes_come_before_library_changes() -> None:
    lib = opt("cache", "x", owner="oslo.cache")
    heat = opt("clients_vitrage", "insecure")
    diff = diff_inventories(inv("a", lib, heat), inv("b"))
    assert [c.owner for c in diff.changes] == ["heat", "oslo.cache"]


GENERATOR_JSON = {
    "options": {
        "DEFAULT": {"opts": [
            {"name": "host", "type": "string value", "default": "vm",
             "sample_default": "<Hostname>", "namespace": "heat.common.config", "choices": [],
             "deprecated_opts": [{"group": None, "name": "old_host"}], "help": "Name.\nMore."},
        ]},
        "database": {"opts": [
            {"name": "connection", "type": "string value", "default": None,
             "namespace": "oslo.db", "deprecated_for_removal": False},
            {"name": "connection", "type": "string value", "default": None,
             "namespace": "heat.common.config", "secret": True},
        ]},
        "clients": {"opts": [
            {"name": "endpoint_type", "type": "string value", "default": "public",
             "choices": [["public", None], ["internal", "desc"]],
             "namespace": "heat.common.config"},
        ]},
    }
}


def test_generator_json_is_read_as_oslo_config_describes_it() -> None:
    options = {o.key: o for o in options_from_generator(GENERATOR_JSON, ["heat.common.config"])}
    host = options[("DEFAULT", "host")]
    assert host.default == "<Hostname>"  # the sample default, not this machine's name
    assert host.deprecated_opts == (("DEFAULT", "old_host"),)
    assert host.help == "Name."
    # Heat re-exports oslo.db's [database] options: Heat owns them, listed once.
    assert options[("database", "connection")].owner == "heat"
    assert options[("database", "connection")].default == "<None>"
    assert options[("database", "connection")].secret  # its values are never shown
    assert not options[("DEFAULT", "host")].secret
    assert options[("clients", "endpoint_type")].choices == ("public", "internal")


def test_the_default_of_a_secret_option_is_not_shown() -> None:
    old = opt("DEFAULT", "auth_encryption_key", default="notgood-but-default", secret=True)
    new = opt("DEFAULT", "auth_encryption_key", default="another-default", secret=True)
    [finding] = diff_findings(diff_inventories(inv("a", old), inv("b", new)))
    shown = "\n".join(finding.lines())
    assert "notgood" not in shown, shown
    assert "another" not in shown, shown
    assert "*** -> ***" in shown


def test_inventory_round_trips_through_its_cache_form() -> None:
    inventory = Inventory("26.0.2", tuple(options_from_generator(GENERATOR_JSON, ["heat.x"])),
                          ("heat.x",), ("oslo.db",))
    again = Inventory.from_dict(inventory.to_dict())
    assert again == inventory
    assert again.replacing("DEFAULT", "old_host") is not None


# -- the inventory cache, with a fake release venv whose generator counts its calls -----------

FAKE_GENERATOR = """#!{python}
import pathlib, sys
calls = pathlib.Path(__file__).with_name("calls")
calls.write_text(calls.read_text() + " ".join(sys.argv[1:]) + "\\n" if calls.exists() else
                 " ".join(sys.argv[1:]) + "\\n")
print({data})
"""


def fake_release(tmp_path: Path) -> Release:
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    heat = site / "openstack_heat-26.0.2.dist-info"
    heat.mkdir(parents=True)
    (heat / "RECORD").write_text("heat/__init__.py,,\n")
    (heat / "entry_points.txt").write_text(
        "[console_scripts]\nheat-manage = heat.cmd.manage:main\n\n[oslo.config.opts]\n"
        "heat.common.config = heat.common.config:list_opts\n"
        "heat_integrationtests.common.config = heat_integrationtests.common.config:list_opts\n")
    lib = site / "oslo.db-17.0.0.dist-info"
    lib.mkdir()
    (lib / "entry_points.txt").write_text("[oslo.config.opts]\noslo.db = oslo_db.options:x\n")
    (venv / "bin").mkdir()
    script = venv / "bin" / "oslo-config-generator"
    script.write_text(FAKE_GENERATOR.format(python=sys.executable,
                                            data=repr(json.dumps(GENERATOR_JSON))))
    script.chmod(0o755)
    return Release(label="26.0.2", version="26.0.2", venv=venv, kind="pypi")


def test_inventory_is_generated_once_then_cached(tmp_path: Path) -> None:
    release = fake_release(tmp_path)
    calls = release.venv / "bin" / "calls"
    first = load_inventory(release)
    assert calls.read_text().split() == [
        "--format", "json", "--namespace", "heat.common.config", "--namespace", "oslo.db"]
    assert first.heat_namespaces == ("heat.common.config",)  # no heat_integrationtests
    assert "oslo.messaging" in first.missing_namespaces
    assert load_inventory(release) is first  # kept in memory for the rest of the run
    inventory_module._LOADED.clear()  # a new process: only the venv's cache is left
    assert load_inventory(release) == first
    assert len(calls.read_text().splitlines()) == 1  # the second call used the cache

    inventory_module._LOADED.clear()
    cache_path(release).write_text("{not json")  # a corrupt cache is only a miss
    assert load_inventory(release) == first
    assert len(calls.read_text().splitlines()) == 2

    # another distribution installed: the options may differ, so the cache is stale
    (release.site_packages / "oslo.log-7.0.0.dist-info").mkdir()
    load_inventory(release)
    assert len(calls.read_text().splitlines()) == 3
