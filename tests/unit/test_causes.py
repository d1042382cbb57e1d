"""A failed test's console lines name the stack, its final status and Heat's reason, list an
aggregate's items, and fit the terminal's width."""

from __future__ import annotations

from grenadier.cli.causes import cause_lines, compact

UUID = "fdcb050d-d480-49ca-a95c-bfb64db7d332"
REASON = "Resource DELETE failed: Conflict: resources.config: Software config with id 1f2e can " \
         "not be deleted as it is referenced"
WAIT = (f"stack grenadier-sc-1a2b ({UUID}): wanted DELETE_COMPLETE, failed: DELETE_FAILED: "
        f"{REASON}\n  status: DELETE_FAILED\n  status reason: {REASON}\n  last events:\n"
        "    2026-12-06T19:00:00 config DELETE_FAILED: Conflict")
INDENTED_WAIT = WAIT.replace("\n", "\n    ")
AGGREGATE = (
    "AssertionError: 2 of 8 failed:\n"
    f"- software_config grenadier-sc-1a2b: StackWaitError: {INDENTED_WAIT}"
    "\n- retain grenadier-retain-9f8e: AssertionError: outputs of stack grenadier-retain-9f8e "
    f"({UUID}) changed across the upgrade:\n"
    '        kept_out.value: expected "abc", found "kept-TAMPER"')


def test_a_failed_stack_operation_names_stack_status_and_reason() -> None:
    (line,) = cause_lines("test_heat_upgrade::test_create_and_delete_new_stack", WAIT, 240)
    assert line == ("         x test_heat_upgrade::test_create_and_delete_new_stack: "
                    f"grenadier-sc-1a2b: DELETE_FAILED: {REASON}")


def test_an_aggregate_prints_its_items() -> None:
    lines = cause_lines("test_heat_upgrade::test_delete_old_stacks", AGGREGATE, 240)
    assert lines == [
        "         x test_heat_upgrade::test_delete_old_stacks: 2 of 8 failed:",
        f"           - software_config grenadier-sc-1a2b: DELETE_FAILED: {REASON}",
        "           - retain grenadier-retain-9f8e: outputs of stack grenadier-retain-9f8e "
        'changed across the upgrade: kept_out.value: expected "abc", found "kept-TAMPER"',
    ]


def test_lines_fit_the_width_and_keep_stack_and_reason() -> None:
    for width in (80, 100):
        lines = cause_lines("test_heat_upgrade::test_create_and_delete_new_stack", WAIT, width)
        lines += cause_lines("test_heat_upgrade::test_delete_old_stacks", AGGREGATE, width)
        assert all(len(line) <= width for line in lines), lines
        assert lines[0].startswith("         x tes")
        assert "grenadier-sc-1a2b: DELETE_FAILED: Resource DELETE" in lines[0]
        assert "- software_config grenadier-sc-1a2b: DELETE_FAILED: Resource" in lines[2]
        assert "grenadier-retain-9f8e: outputs of stack" in lines[3]


def test_many_items_are_counted_not_all_shown() -> None:
    message = "12 of 12 failed:\n" + "\n".join(
        f"- s{i} stack-{i}: HeatError: GET /stacks/stack-{i}/resources -> 400: gone"
        for i in range(12))
    lines = cause_lines("test_x", message, 120)
    assert lines[1] == "           - s0 stack-0: GET /stacks/stack-0/resources -> 400: gone"
    assert len(lines) == 1 + 8 + 1
    assert lines[-1].endswith("... and 4 more (report.json)")


def test_indented_entries_of_a_list_are_its_items() -> None:
    message = (f"2 stack(s) still IN_PROGRESS after 60 s (GRENADIER_SETTLE_SECONDS):\n"
               f"    grenadier-nested-1 ({UUID}): UPDATE_IN_PROGRESS: Stack UPDATE started\n"
               f"    grenadier-group-2 ({UUID}): CREATE_IN_PROGRESS: Stack CREATE started")
    assert cause_lines("t", message, 120)[1:] == [
        "           grenadier-nested-1: UPDATE_IN_PROGRESS: Stack UPDATE started",
        "           grenadier-group-2: CREATE_IN_PROGRESS: Stack CREATE started"]


def test_a_timeout_keeps_how_long_it_waited() -> None:
    text = (f"stack s ({UUID}): wanted UPDATE_COMPLETE, timed out after 180 s: "
            "UPDATE_IN_PROGRESS: Stack UPDATE started")
    assert compact(text) == ("stack s: timed out after 180 s: UPDATE_IN_PROGRESS: "
                             "Stack UPDATE started")
    # any other stack line keeps its word "stack"; one with a status loses it
    assert compact(f"stack s ({UUID}): wanted X, failed: CHECK_FAILED: r") == "s: CHECK_FAILED: r"


def test_heat_api_errors_lose_their_url_and_class_but_keep_heats_answer() -> None:
    url = ("http://127.0.0.1:57025/v1/4ed0909ca54241ac8229b68a1200ddd8/stacks/grenadier-evolve-5"
           f"/{UUID}/resources")
    error = f"GET {url} -> 400: StackValidationFailed: The Resource Type (OS::Heat::X) could not"
    message = f"3 of 8 failed:\n- evolve grenadier-evolve-5: HeatError: {error}\n"
    assert cause_lines("t", message, 200)[1] == (
        "           - evolve grenadier-evolve-5: GET .../resources -> 400: "
        "StackValidationFailed: The Resource Type (OS::Heat::X) could not")
    fixture = f'failed on setup with "grenadier.services.heat_client.HeatError: POST {url} -> 400'
    assert compact(fixture).startswith("setup: POST stacks/grenadier-evolve-5/resources -> 400")


def test_a_list_ends_where_pytest_adds_its_assert() -> None:
    message = ("AssertionError: 1 stack(s) still IN_PROGRESS after 60 s:\n"
               f"      grenadier-x ({UUID}): CHECK_IN_PROGRESS: Stack CHECK started\n"
               "assert not [{'id': 'x'}]")
    assert cause_lines("t", message, 200) == [
        "         x t: 1 stack(s) still IN_PROGRESS after 60 s:",
        "           grenadier-x: CHECK_IN_PROGRESS: Stack CHECK started"]


def test_a_timed_out_item_names_its_stack_once() -> None:
    message = (f"1 of 7 failed:\n- params grenadier-params-2: StackWaitError: stack "
               f"grenadier-params-2 ({UUID}): wanted CHECK_COMPLETE, timed out after 120 s: "
               "CHECK_IN_PROGRESS: Stack CHECK started")
    assert cause_lines("t", message, 200)[1] == (
        "           - params grenadier-params-2: timed out after 120 s: CHECK_IN_PROGRESS: "
        "Stack CHECK started")
