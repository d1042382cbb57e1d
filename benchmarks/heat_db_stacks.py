"""The real stacks make_heat_db.py creates through a running Heat before it multiplies them.

Resource types that need no other OpenStack service, in shapes a production database holds:
flat stacks updated and checked (most of the rows: resources and events), an application with
a nested stack, a ResourceGroup of nested stacks, a SoftwareConfig with a SoftwareDeployment
and a signalled WaitCondition, a stack left suspended, one left CREATE_FAILED, one deleted
(Heat keeps its row and events), one with a snapshot; every stack tagged.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grenadier.plugins.heat.suite import catalog, operations
from grenadier.services.heat_client import HeatClient, StackRef

TIMEOUT = 300.0
#: resources in a chain (each uses the one before): one leaf, so an operation is quick
FLAT_LENGTH = 12


def flat_template() -> dict[str, Any]:
    """A chain of RandomString, Values, TestResources and a None; ``label`` reaches all but
    the first, so an update changes all the others; ``fail`` makes a middle one fail."""
    resources: dict[str, Any] = {"r0": {"type": "OS::Heat::RandomString",
                                        "properties": {"length": 12}}}
    for i in range(1, FLAT_LENGTH):
        before = {"get_attr": [f"r{i - 1}", "value" if i <= 5 else "output"]}
        if i == FLAT_LENGTH - 1:
            resources[f"r{i}"] = {"type": "OS::Heat::None", "depends_on": f"r{i - 1}",
                                  "properties": {"label": {"get_param": "label"}}}
        elif i < 5:
            resources[f"r{i}"] = {"type": "OS::Heat::Value", "properties": {"value": {
                "list_join": ["-", [{"get_param": "label"}, before]]}}}
        else:
            resources[f"r{i}"] = {"type": "OS::Heat::TestResource", "properties": {
                "value": {"list_join": ["-", [{"get_param": "label"}, before]]},
                "fail": {"get_param": "fail"} if i == 7 else False}}
    return {"heat_template_version": "2018-08-31",
            "description": "make_heat_db: a chain of resources",
            "parameters": {"label": {"type": "string", "default": "one"},
                           "fail": {"type": "boolean", "default": False}},
            "resources": resources,
            "outputs": {"last": {"value": {"get_attr": [f"r{FLAT_LENGTH - 2}", "output"]}}}}


def app_template() -> dict[str, Any]:
    """A nested stack, a ResourceGroup of nested stacks, a SoftwareConfig, a WaitCondition."""
    return {
        "heat_template_version": "2018-08-31",
        "description": "make_heat_db: an application",
        "parameters": {"worker_count": {"type": "number", "default": 3}},
        "resources": {
            "config": {"type": "OS::Heat::SoftwareConfig", "properties": {
                "group": "script", "config": "#!/bin/sh\necho configured\n",
                "inputs": [{"name": "who", "default": "world"}],
                "outputs": [{"name": "result"}]}},
            "password": {"type": "OS::Heat::RandomString", "properties": {"length": 16}},
            "database": {"type": "inner.yaml", "properties": {"word": "db"}},
            "workers": {"type": "OS::Heat::ResourceGroup", "properties": {
                "count": {"get_param": "worker_count"},
                "resource_def": {"type": "inner.yaml",
                                 "properties": {"word": "worker-%index%"}}}},
            "handle": {"type": "OS::Heat::WaitConditionHandle"},
            "wait": {"type": "OS::Heat::WaitCondition", "properties": {
                "handle": {"get_resource": "handle"}, "count": 1, "timeout": 600}},
            "url": {"type": "OS::Heat::Value", "properties": {"value": {"list_join": [
                "/", [{"get_attr": ["database", "out"]}, {"get_attr": ["password", "value"]},
                      {"get_attr": ["wait", "data"]}]]}}},
        },
        "outputs": {"config_id": {"value": {"get_resource": "config"}},
                    "url": {"value": {"get_attr": ["url", "value"]}}},
    }


def group_template() -> dict[str, Any]:
    return {"heat_template_version": "2018-08-31",
            "description": "make_heat_db: a ResourceGroup",
            "parameters": {"count": {"type": "number", "default": 4}},
            "resources": {"group": {"type": "OS::Heat::ResourceGroup", "properties": {
                "count": {"get_param": "count"}, "resource_def": {
                    "type": "OS::Heat::TestResource",
                    "properties": {"value": "member-%index%"}}}}}}


class Maker:
    """Creates and operates on the stacks of one kind; counts what it did."""

    def __init__(self, heat: HeatClient) -> None:
        self.heat = heat
        self.done: Counter[str] = Counter()
        self.inner = catalog.files_map("inner.yaml")

    def _create(self, kind: str, index: int, template: dict[str, Any],
                parameters: dict[str, Any] | None = None, files: dict[str, str] | None = None,
                ) -> StackRef:
        name = f"gen-{kind}-{index:05d}-{uuid.uuid4().hex[:4]}"
        body = {"stack_name": name, "template": template, "parameters": parameters or {},
                "files": files or {}, "disable_rollback": True, "tags": f"gen,{kind}"}
        created = self.heat.request("POST", "stacks", json=body).json()["stack"]
        self.done["create"] += 1
        return StackRef(name, created["id"])

    def _act(self, ref: StackRef, what: str, call: Callable[[], None], want: str) -> None:
        operations.act(self.heat, ref, call, want, TIMEOUT)
        self.done[what] += 1

    def flat(self, index: int, after: str = "") -> None:
        ref = self._create("flat", index, flat_template())
        self.heat.wait_for(ref, {"CREATE_COMPLETE"}, TIMEOUT)
        if after == "suspend":
            self._act(ref, "suspend", lambda: self.heat.suspend(ref), "SUSPEND_COMPLETE")
            return
        if after == "snapshot":
            self.heat.request("POST", f"{ref.path}/snapshots", json={"name": "before"})
            self.done["snapshot"] += 1
            return
        self._act(ref, "update", lambda: self.heat.patch_update(ref, {"label": "two"}),
                  "UPDATE_COMPLETE")
        if after == "check":
            self._act(ref, "check", lambda: self.heat.check(ref), "CHECK_COMPLETE")
        elif after == "delete":
            self.heat.delete_stack(ref)
            self.heat.wait_for(ref, {"DELETE_COMPLETE"}, TIMEOUT)
            self.done["delete"] += 1

    def failed(self, index: int) -> None:
        ref = self._create("failed", index, flat_template(), {"fail": True})
        self.heat.wait_for(ref, {"CREATE_FAILED"}, TIMEOUT)
        self.done["failed"] += 1

    def app(self, index: int) -> None:
        ref = self._create("app", index, app_template(), {}, self.inner)
        catalog.wait_resource(self.heat, ref, "handle", {"CREATE_COMPLETE"}, TIMEOUT)
        self.heat.signal_resource(ref, "handle", catalog.PRE_SIGNAL)
        self.heat.wait_for(ref, {"CREATE_COMPLETE"}, TIMEOUT)
        config = self.heat.output_values(ref)["config_id"]
        body = {"config_id": config, "server_id": str(uuid.uuid4()), "action": "CREATE",
                "status": "IN_PROGRESS", "status_reason": "deploying",
                "input_values": {"who": f"app-{index}"}}
        made = self.heat.request("POST", "software_deployments", json=body).json()
        deployment = made["software_deployment"]["id"]
        self.heat.request("PUT", f"software_deployments/{deployment}", json={
            "status": "COMPLETE", "status_reason": "deployed",
            "output_values": {"result": "ok", "deploy_status_code": 0}})
        self.done["deployment"] += 1

    def group(self, index: int) -> None:
        ref = self._create("group", index, group_template())
        self.heat.wait_for(ref, {"CREATE_COMPLETE"}, TIMEOUT)
        self._act(ref, "update", lambda: self.heat.patch_update(ref, {"count": 5}),
                  "UPDATE_COMPLETE")


#: one cycle of ten root stacks: what each index modulo 10 becomes
CYCLE: tuple[tuple[str, Callable[[Maker, int], None]], ...] = (
    ("flat, updated, checked", lambda m, i: m.flat(i, "check")),
    ("flat, updated", lambda m, i: m.flat(i)),
    ("flat, updated, checked", lambda m, i: m.flat(i, "check")),
    ("app + software deployment", lambda m, i: m.app(i)),
    ("flat, suspended", lambda m, i: m.flat(i, "suspend")),
    ("flat, CREATE_FAILED", lambda m, i: m.failed(i)),
    ("flat, updated, deleted", lambda m, i: m.flat(i, "delete")),
    ("ResourceGroup, grown", lambda m, i: m.group(i)),
    ("flat with a snapshot", lambda m, i: m.flat(i, "snapshot")),
    ("flat, updated", lambda m, i: m.flat(i)),
)


def create_stacks(heat: HeatClient, roots: int, workers: int) -> tuple[dict[str, int], list[str]]:
    """``roots`` root stacks of the cycle, ``workers`` at a time; what was done, and failures
    (a stack that does not reach its state is reported, not fatal: the rows are still real)."""
    maker = Maker(heat)
    errors: list[str] = []

    def one(index: int) -> None:
        label, make = CYCLE[index % len(CYCLE)]
        try:
            make(maker, index)
        except Exception as exc:  # one stack's trouble must not stop the others
            errors.append(f"stack {index} ({label}): {type(exc).__name__}: {exc}"[:300])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(roots)))
    return dict(maker.done), errors
