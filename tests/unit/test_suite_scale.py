"""The suite's catalog: how each stack is settled, and the opt-in scale knob
(GRENADIER_SUITE_EXTRA_STACKS extra simple stacks)."""

from __future__ import annotations

import pytest

from grenadier.plugins.heat.suite import catalog
from tests.helpers.fake_heat import FakeHeat


@pytest.mark.parametrize(("raw", "count"), [(None, 0), ("", 0), (" ", 0), ("0", 0), ("7", 7),
                                            (" 200 ", 200)])
def test_extra_stacks_read_from_the_environment(raw: str | None, count: int) -> None:
    environ = {} if raw is None else {catalog.EXTRA_STACKS_ENV: raw}
    assert catalog.extra_stacks(environ) == count


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5"])
def test_a_bad_extra_stacks_value_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=catalog.EXTRA_STACKS_ENV):
        catalog.extra_stacks({catalog.EXTRA_STACKS_ENV: raw})


def test_default_is_the_builtin_set_unchanged() -> None:
    assert catalog.all_specs() == catalog.SPECS
    assert catalog.all_specs(0) == catalog.SPECS
    assert catalog.extra_specs(0) == ()


def test_extra_specs_are_simple_distinct_stacks_after_the_builtin_set() -> None:
    specs = catalog.all_specs(12)
    assert specs[: len(catalog.SPECS)] == catalog.SPECS
    extra = specs[len(catalog.SPECS):]
    assert len(extra) == 12
    keys = [spec.key for spec in extra]
    assert len(set(keys) | set(catalog.SPEC_BY_KEY)) == len(specs)  # no key collides
    assert keys[0] == "extra_0001"
    assert keys[-1] == "extra_0012"
    for spec in extra:
        assert spec.template == "inner.yaml"
        assert not spec.files
        assert spec.settled == catalog.COMPLETE
        assert (catalog.TEMPLATES / spec.template).is_file()
        assert spec.stack_name().startswith("grenadier-extra-")


def test_extra_specs_are_the_same_for_the_same_count() -> None:
    # post-upgrade rebuilds the keys from the count saved by pre-upgrade
    assert catalog.extra_specs(200)[-1].key == "extra_0200"


@pytest.mark.parametrize(("key", "calls"), [
    ("params", [("create",), ("wait", "CREATE_COMPLETE")]),
    ("in_progress", [("create",), ("resource", "slow")]),  # not waited for
    ("wait_condition", [("create",), ("resource", "handle"), ("signal", "handle", "pre"),
                        ("wait", "CREATE_COMPLETE")]),
    ("suspended", [("create",), ("wait", "CREATE_COMPLETE"), ("suspend",),
                   ("wait", "SUSPEND_COMPLETE")]),
])
def test_each_stack_is_brought_to_the_state_its_spec_settles(
        key: str, calls: list[tuple[str, ...]]) -> None:
    heat = FakeHeat()
    ref = catalog.create(heat, catalog.SPEC_BY_KEY[key])
    assert heat.calls == [(kind, ref.name, *details) for kind, *details in calls]


def test_settled_states_are_the_ones_create_knows() -> None:
    assert {s.settled for s in catalog.SPECS} == {catalog.COMPLETE, catalog.SUSPENDED,
                                                   catalog.IN_PROGRESS}
    with pytest.raises(ValueError, match="cannot be left UPDATE_COMPLETE"):
        catalog.StackSpec("x", "inner.yaml", "x", settled="UPDATE_COMPLETE")
    with pytest.raises(ValueError, match="started"):
        catalog.StackSpec("x", "inner.yaml", "x", settled=catalog.IN_PROGRESS)
    with pytest.raises(ValueError, match="started"):
        catalog.StackSpec("x", "inner.yaml", "x", started="slow")
