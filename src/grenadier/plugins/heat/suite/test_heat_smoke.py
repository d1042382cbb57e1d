"""Smoke tests: a quick create / show / update / delete, against base and target alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grenadier.plugins.heat.suite import catalog, operations
from grenadier.plugins.heat.suite.catalog import OPERATION_TIMEOUT
from grenadier.services.heat_client import HeatClient, StackRef

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def smoke_stack(heat: HeatClient) -> Iterator[StackRef]:
    """A stack created for this module; deleted at the end whatever the tests did."""
    ref = heat.create_stack(catalog.unique_name("smoke"), catalog.template("smoke.yaml"),
                            {"label": "before"})
    yield ref
    heat.delete_stack(ref)


def test_create(heat: HeatClient, smoke_stack: StackRef) -> None:
    heat.wait_for(smoke_stack, {"CREATE_COMPLETE"}, OPERATION_TIMEOUT)


def test_show(heat: HeatClient, smoke_stack: StackRef) -> None:
    stack = heat.get_stack(smoke_stack)
    assert stack["stack_name"] == smoke_stack.name
    assert stack["stack_status"] == "CREATE_COMPLETE", stack.get("stack_status_reason")
    assert str(heat.output_values(smoke_stack)["value"]).startswith("before:")
    assert {r["resource_name"] for r in heat.list_resources(smoke_stack)} == {"random", "value"}


def test_update(heat: HeatClient, smoke_stack: StackRef) -> None:
    old = str(heat.output_values(smoke_stack)["value"])
    operations.act(heat, smoke_stack, lambda: heat.patch_update(smoke_stack, {"label": "after"}),
                   "UPDATE_COMPLETE")
    new = str(heat.output_values(smoke_stack)["value"])
    assert new == "after:" + old.split(":", 1)[1], f"output after update: {old!r} -> {new!r}"


def test_delete(heat: HeatClient, smoke_stack: StackRef) -> None:
    heat.delete_stack(smoke_stack)
    heat.wait_for(smoke_stack, {"DELETE_COMPLETE"}, OPERATION_TIMEOUT)
    assert heat.gone_by_name(smoke_stack.name), f"deleted stack {smoke_stack} still found by name"
