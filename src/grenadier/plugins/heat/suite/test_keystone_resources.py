"""Keystone physical resources across the upgrade (runs only with ``--auth keystone``).

Users, groups, roles, role assignments and projects are the physical resources Heat can manage
without Nova. Before the upgrade a stack creates them; while Heat is down and upgraded they are
checked *directly in Keystone*, about once a second; after it, Heat updates them and Keystone
must show the change; a delete removes them from Keystone (the project is retained:
deleting one needs Neutron). Creating them takes an admin (Heat's policy
``resource_types:OS::Keystone::*`` and Keystone's own), so this module works in the admin
project with the admin credentials of the run; the rest of the suite runs as a non-admin user.

The runner gives each test file its own during-upgrade process, so this module's Keystone watch
runs beside the built-in database watch of test_heat_upgrade.py, not after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from grenadier.model.findings import Finding
from grenadier.plugins.heat.suite import catalog, inventory, operations
from grenadier.project.testing import (
    FindingReporter,
    Tick,
    UpgradeState,
    UpgradeWatch,
    heat_client,
    namespace_for,
)
from grenadier.services.connection import Connection, Endpoint
from grenadier.services.heat_client import HeatClient
from grenadier.services.keystone import KeystoneAPI, api_from

#: this module's state-store namespace (what the ``upgrade_state`` fixture uses for it)
NAMESPACE = namespace_for(__file__)
KEY = "stack:keystone_identity"
TEMPLATE = "keystone_identity.yaml"
UPDATED = "updated through Heat after the upgrade"
Record = dict[str, Any]


def keystone_auth(conn: Connection) -> Mapping[str, Any] | None:
    """endpoint.json's ``auth`` block when the run has a Keystone, else None."""
    auth = conn.endpoint.auth if conn.endpoint is not None else None
    return auth if auth is not None and auth.get("type") == "keystone" else None


# -- what is checked in Keystone ----------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One physical resource of the stack, as Keystone must show it."""

    resource: str  # the stack's logical resource name
    type: str
    label: str  # what it is in Keystone
    path: str = ""  # GET path that must answer, e.g. users/<id>
    filters: tuple[tuple[str, str], ...] = ()  # or: role_assignments that must be listed

    def present(self, api: KeystoneAPI) -> bool:
        if self.filters:
            return bool(api.role_assignments(**dict(self.filters)))
        return api.get(self.path) is not None


def probes(rec: Record) -> list[Probe]:
    """What the stack recorded by pre-upgrade made in Keystone."""
    ids = {name: res["physical_id"] for name, res in rec["resources"].items()}
    names = rec["names"]
    user, group, role, project = ids["user"], ids["group"], ids["role"], ids["project"]
    on = (("role.id", role), ("scope.project.id", project))
    return [
        Probe("project", "OS::Keystone::Project", f"project {names['project']} ({project})",
              f"projects/{project}"),
        Probe("role", "OS::Keystone::Role", f"role {names['role']} ({role})", f"roles/{role}"),
        Probe("group", "OS::Keystone::Group", f"group {names['group']} ({group})",
              f"groups/{group}"),
        Probe("user", "OS::Keystone::User", f"user {names['user']} ({user})", f"users/{user}"),
        Probe("user", "OS::Keystone::User", f"membership of user {user} in group {group}",
              f"groups/{group}/users/{user}"),
        Probe("user_roles", "OS::Keystone::UserRoleAssignment",
              f"role {role} of user {user} on project {project}",
              filters=(("user.id", user), *on)),
        Probe("group_roles", "OS::Keystone::GroupRoleAssignment",
              f"role {role} of group {group} on project {project}",
              filters=(("group.id", group), *on)),
    ]


@dataclass
class Seen:
    """What the watch saw of one probe."""

    probe: Probe
    first_missing: datetime | None = None
    missing_pass: int = 0
    elapsed: float = 0.0
    last_present: datetime | None = None
    back: datetime | None = None  # present again after having been missing


@dataclass
class KeystoneWatch:
    """Checks the probes on every pass of an UpgradeWatch: until the upgrade step ends."""

    stack: str
    probes: list[Probe]
    api: KeystoneAPI
    seen: list[Seen] = field(default_factory=list)
    passes: int = 0
    errors: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended: datetime | None = None

    def __post_init__(self) -> None:
        self.seen = [Seen(probe) for probe in self.probes]

    def run(self, ticks: Iterable[Tick]) -> None:
        for tick in ticks:
            self.check_once(tick.elapsed)
        self.ended = datetime.now(timezone.utc)

    def check_once(self, elapsed: float) -> None:
        self.passes += 1
        for seen in self.seen:
            now = datetime.now(timezone.utc)
            try:
                present = seen.probe.present(self.api)
            except Exception as exc:  # Keystone briefly unreachable is not a vanished resource
                self.errors.append(f"pass {self.passes} at {now:%H:%M:%S}: {exc}")
                continue
            if present and seen.first_missing is None:
                seen.last_present = now
            elif present and seen.back is None:
                seen.back = now
            elif not present and seen.first_missing is None:
                seen.first_missing, seen.missing_pass, seen.elapsed = now, self.passes, elapsed

    def vanished(self) -> list[Seen]:
        return [seen for seen in self.seen if seen.first_missing is not None]


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keystone_auth_block(grenadier_connection: Connection) -> Mapping[str, Any]:
    auth = keystone_auth(grenadier_connection)
    if auth is None:
        pytest.skip("no Keystone in this run (grenadier run --auth keystone)")
    return auth


@pytest.fixture(scope="module")
def keystone(keystone_auth_block: Mapping[str, Any]) -> Iterator[KeystoneAPI]:
    """Keystone's REST API with the run's admin credentials: checks that bypass Heat."""
    with api_from(keystone_auth_block) as api:
        yield api


@pytest.fixture(scope="module")
def admin_heat(keystone_auth_block: Mapping[str, Any],
               heat_endpoint: Endpoint) -> Iterator[HeatClient]:
    """Heat as the run's admin, in the admin project (OS::Keystone::* need an admin)."""
    with heat_client(heat_endpoint, "admin") as client:
        yield client


def _record(upgrade_state: UpgradeState) -> Record:
    rec: Record = upgrade_state.require(KEY)
    return rec


# -- pre-upgrade -------------------------------------------------------------------------------

@pytest.mark.pre_upgrade
def test_create_keystone_resources(admin_heat: HeatClient, keystone: KeystoneAPI,
                                   upgrade_state: UpgradeState) -> None:
    """A stack of Keystone resources reaches CREATE_COMPLETE and Keystone shows each one."""
    prefix = f"grenadier-ks-{uuid.uuid4().hex[:6]}"
    ref = admin_heat.create_stack(catalog.unique_name("keystone"), catalog.template(TEMPLATE),
                                  {"prefix": prefix, "password": uuid.uuid4().hex})
    admin_heat.wait_for(ref, {"CREATE_COMPLETE"}, catalog.OPERATION_TIMEOUT)
    resources = {r["resource_name"]: {"type": r["resource_type"],
                                      "physical_id": r["physical_resource_id"]}
                 for r in admin_heat.list_resources(ref)}
    names = {name: f"{prefix}-{name}" for name in ("project", "role", "group", "user")}
    rec = {"name": ref.name, "id": ref.id, "prefix": prefix, "resources": resources,
           "names": names}
    missing = [p.label for p in probes(rec) if not p.present(keystone)]
    assert not missing, f"stack {ref}: Keystone does not show {missing}"
    upgrade_state.save(KEY, rec)


# -- during-upgrade ----------------------------------------------------------------------------

def _vanished_report(watch: KeystoneWatch) -> list[tuple[str, str]]:
    """(where, what was seen) of each resource that went missing."""
    report = []
    for seen in watch.vanished():
        last = f"{seen.last_present:%H:%M:%S.%f} UTC" if seen.last_present else "never"
        back = f"; present again at {seen.back:%H:%M:%S} UTC" if seen.back else ""
        report.append((
            f"stack {watch.stack}, resource {seen.probe.resource} ({seen.probe.type})",
            f"{seen.probe.label} first missing at {seen.first_missing:%H:%M:%S.%f} UTC, "
            f"{seen.elapsed:.1f} s into the watch (pass {seen.missing_pass}); last seen "
            f"present: {last}{back}"))
    return report


@pytest.mark.during_upgrade
def test_keystone_resources_stay_while_heat_is_down(
        keystone_auth_block: Mapping[str, Any], upgrade_state: UpgradeState,
        upgrade_watch: UpgradeWatch, findings: FindingReporter) -> None:
    """With Heat down and being upgraded, every Keystone resource of the stack stays in
    Keystone, checked directly (not through Heat) about once a second until the upgrade ends."""
    rec = _record(upgrade_state)
    with api_from(keystone_auth_block) as api:
        watch = KeystoneWatch(rec["name"], probes(rec), api)
        watch.run(upgrade_watch)
    gone = _vanished_report(watch)
    for where, found in gone:
        findings.report(Finding("keystone.resource-vanished", "error",
                                "a Keystone resource of a stack vanished while Heat was down",
                                where=where, expected="present in Keystone", found=found))
    if gone:
        pytest.fail(f"{len(gone)} Keystone resource(s) vanished while Heat was down:\n"
                    + "\n".join(f"    {where}: {found}" for where, found in gone),
                    pytrace=False)
    if watch.passes and all(not s.last_present for s in watch.seen):
        pytest.fail("Keystone could not be read in any pass:\n" + "\n".join(watch.errors[-5:]),
                    pytrace=False)
    checked = "; ".join(f"{s.probe.resource}: {s.probe.label}" for s in watch.seen)
    summary = (f"{len(watch.seen)} Keystone resources of stack {watch.stack} checked directly "
               f"in Keystone in {watch.passes} pass(es) from {watch.started:%H:%M:%S} to "
               f"{watch.ended:%H:%M:%S} UTC while Heat was down, all present: {checked}")
    findings.report(Finding("keystone.resources-checked", "info", summary,
                            where=f"stack {watch.stack}"))
    print(summary)


# -- post-upgrade ------------------------------------------------------------------------------

@pytest.mark.post_upgrade
def test_keystone_resources_after_upgrade(admin_heat: HeatClient, keystone: KeystoneAPI,
                                          upgrade_state: UpgradeState) -> None:
    """The target Heat shows the same physical ids, and Keystone still has every resource."""
    rec = _record(upgrade_state)
    now = {r["resource_name"]: r["physical_resource_id"]
           for r in admin_heat.list_resources(inventory.ref_of(rec))}
    was = {name: res["physical_id"] for name, res in rec["resources"].items()}
    assert now == was, f"stack {rec['name']}: physical ids {was} became {now}"
    missing = [p.label for p in probes(rec) if not p.present(keystone)]
    assert not missing, f"stack {rec['name']}: Keystone no longer shows {missing}"


@pytest.mark.post_upgrade
def test_update_keystone_resources_through_heat(admin_heat: HeatClient, keystone: KeystoneAPI,
                                                upgrade_state: UpgradeState) -> None:
    """An update through the target Heat changes the user, group and project in Keystone."""
    rec = _record(upgrade_state)
    ref = inventory.ref_of(rec)
    operations.act(admin_heat, ref, lambda: admin_heat.patch_update(ref, {"description": UPDATED}),
                   "UPDATE_COMPLETE")
    ids = {name: res["physical_id"] for name, res in rec["resources"].items()}
    stale = {}
    for kind, name in (("users", "user"), ("groups", "group"), ("projects", "project")):
        shown = (keystone.get(f"{kind}/{ids[name]}") or {}).get(kind[:-1], {})
        if shown.get("description") != UPDATED:
            stale[name] = shown.get("description", "(gone)")
    assert not stale, f"stack {ref}: Keystone still shows the old descriptions {stale}"


@pytest.mark.post_upgrade
def test_delete_removes_keystone_resources(admin_heat: HeatClient, keystone: KeystoneAPI,
                                           upgrade_state: UpgradeState) -> None:
    """Deleting the stack removes the user, group, role and assignments from Keystone; the
    project (deletion_policy Retain) stays, and is then removed directly."""
    rec = _record(upgrade_state)
    ref = inventory.ref_of(rec)
    admin_heat.delete_stack(ref)
    admin_heat.wait_for(ref, {"DELETE_COMPLETE"}, catalog.OPERATION_TIMEOUT)
    left = [p.label for p in probes(rec) if p.resource != "project" and p.present(keystone)]
    project = rec["resources"]["project"]["physical_id"]
    retained = keystone.get(f"projects/{project}") is not None
    if retained:
        keystone.delete(f"projects/{project}")
    assert not left, f"stack {ref} deleted, but Keystone still has {left}"
    assert retained, f"project {project} (deletion_policy: Retain) was deleted with the stack"
