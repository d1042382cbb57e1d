"""Binding messages as oslo.messaging dispatches them, and the rpc-contract findings, on fakes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grenadier.checks.rpc.compare import contract_findings
from grenadier.checks.rpc.contract import (
    Contract,
    Endpoint,
    Message,
    ObjectInfo,
    Param,
    dispatch,
    version_is_compatible,
)


def params(*names: str, defaults: tuple[str, ...] = (), kwargs: bool = False
           ) -> tuple[Param, ...]:
    out = [Param("ctxt", "POSITIONAL_OR_KEYWORD")]
    out += [Param(n, "POSITIONAL_OR_KEYWORD", n in defaults) for n in names]
    return tuple(out + ([Param("kwargs", "VAR_KEYWORD")] if kwargs else []))


LIST = params("stack_identity", "nested_depth", "with_detail", "filters",
              defaults=("nested_depth", "with_detail", "filters"))
SEND = Message("engine", "list_stack_resources",
               ("filters", "nested_depth", "stack_identity", "with_detail"), "1.25", "call",
               "heat.rpc.client.EngineClient.list_stack_resources")
CHECK = Message("worker", "check_resource", ("resource_id",), "1.9", "cast",
                "heat.rpc.worker_client.WorkerClient.check_resource")
STACK = ObjectInfo("Stack", "1.0", {"id": "StringField", "name": "StringField"})


def contract(release: str, *, list_params: tuple[Param, ...] = LIST, version: str = "1.36",
             worker: str = "1.9", message: Message = SEND,
             objects: tuple[ObjectInfo, ...] = (STACK,)) -> Contract:
    engine = Endpoint("engine", "heat.engine.service.EngineService", version,
                      {"list_stack_resources": list_params, "show_stack": params("stack_identity")})
    workers = Endpoint("worker", "heat.engine.worker.WorkerService", worker,
                       {"check_resource": params("resource_id")})
    return Contract(release, (message, CHECK), {"engine": engine, "worker": workers},
                    {o.name: o for o in objects})


def errors(base: Contract, target: Contract) -> list[str]:
    return [f"{f.kind}: {f.what}" for f in contract_findings(base, target)
            if f.severity == "error"]


def test_quiet_when_both_releases_have_the_same_contract() -> None:
    assert contract_findings(contract("26.0.2"), contract("27.0.1")) == []


def test_a_renamed_keyword_without_a_version_bump_is_an_error_naming_method_and_argument(
        ) -> None:
    renamed = params("stack_identity", "nested_depth", "detailed", "filters",
                     defaults=("nested_depth", "detailed", "filters"))
    target = contract("27.0.1", list_params=renamed,
                      message=replace(SEND, kwargs=("detailed", "filters", "nested_depth",
                                                    "stack_identity")))
    findings = contract_findings(contract("26.0.2"), target)
    [error] = [f for f in findings if f.severity == "error"]
    assert error.kind == "unexpected-argument"
    assert "list_stack_resources() does not take keyword argument(s) 'with_detail'" in error.what
    assert error.where == ("26.0.2 heat.rpc.client.EngineClient.list_stack_resources -> "
                           "27.0.1 heat.engine.service.EngineService.list_stack_resources")
    assert "detailed=..." in error.found
    assert error.remedy
    # the target's own message reaching an old engine: a warning (shared bus only)
    [warning] = [f for f in findings if f.severity == "warning"]
    assert "'detailed'" in warning.what
    assert "share one message bus" in warning.expected


def test_an_endpoint_taking_any_keyword_binds_every_message() -> None:
    open_ended = params("stack_identity", kwargs=True)
    assert errors(contract("26.0.2"), contract("27.0.1", list_params=open_ended)) == []


def test_a_new_required_argument_is_missing_from_the_old_message() -> None:
    stricter = (*LIST, Param("tenant", "KEYWORD_ONLY"))
    assert errors(contract("26.0.2"), contract("27.0.1", list_params=stricter)) == [
        "missing-argument: engine RPC list_stack_resources: 27.0.1 rejects what 26.0.2 sends: "
        "list_stack_resources() requires argument(s) 'tenant' that the message does not carry"]


def test_a_vanished_method_and_a_lowered_version_are_errors() -> None:
    base = contract("26.0.2")
    gone = replace(base.endpoints["engine"], methods={"show_stack": params("stack_identity")})
    target = replace(contract("27.0.1"), endpoints={**base.endpoints, "engine": gone})
    assert [e.split(":")[0] for e in errors(base, target)] == ["no-such-method"]
    lowered = contract("27.0.1", version="1.20")
    assert sorted(e.split(":")[0] for e in errors(base, lowered)) == [
        "unsupported-version", "version-lowered"]


def test_a_method_the_old_release_itself_cannot_dispatch_is_not_the_upgrade_fault() -> None:
    broken = replace(SEND, kwargs=(*SEND.kwargs, "bogus"))
    assert errors(contract("26.0.2", message=broken), contract("27.0.1", message=broken)) == []


@pytest.mark.parametrize(("old", "new"), [
    (ObjectInfo("Stack", "1.0", {"id": "StringField"}, compat=True), "object-field-removed"),
    (ObjectInfo("Stack", "0.9", STACK.fields), "object-version-lowered"),
])
def test_a_versioned_object_losing_a_field_or_going_back_is_an_error(
        old: ObjectInfo, new: str) -> None:
    assert [e.split(":")[0] for e in errors(contract("26.0.2"),
                                            contract("27.0.1", objects=(old,)))] == [new]


def test_a_removed_field_with_a_version_bump_and_compat_code_is_fine() -> None:
    bumped = ObjectInfo("Stack", "1.1", {"id": "StringField"}, compat=True)
    assert contract_findings(contract("26.0.2"), contract("27.0.1", objects=(bumped,))) == []
    no_compat = replace(bumped, compat=False)
    assert errors(contract("26.0.2"), contract("27.0.1", objects=(no_compat,)))


@pytest.mark.parametrize(("implemented", "wanted", "ok"), [
    ("1.36", "1.25", True), ("1.36", "1.36", True), ("1.36", "1.37", False),
    ("2.0", "1.9", False), (None, "1.0", True), ("1.4", "1.4.1", False), ("1.4.2", "1.4.1", True),
])
def test_version_compatibility_is_oslo_messaging_s(implemented: str | None, wanted: str,
                                                   ok: bool) -> None:
    assert version_is_compatible(implemented, wanted) is ok


def test_dispatch_refuses_private_methods_and_absent_endpoints() -> None:
    endpoint = Endpoint("engine", "E", "1.0", {"_hidden": params()})
    assert dispatch(endpoint, Message("engine", "_hidden", ())).kind == "no-such-method"  # type: ignore[union-attr]
    assert dispatch(None, SEND).kind == "no-endpoint"  # type: ignore[union-attr]
    assert dispatch(Endpoint("engine", "E", "1.36", {"list_stack_resources": LIST}), SEND) is None
