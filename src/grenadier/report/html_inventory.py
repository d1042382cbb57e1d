"""The stack inventory of report.html: every stack before and after the upgrade, side by side."""

from __future__ import annotations

from typing import Any

from grenadier.report.html_data import dicts, esc, text_of

STACK_STATUS = (("FAILED", "failed"), ("IN_PROGRESS", "interrupted"), ("COMPLETE", "ok"))


def _stacks(inventory: Any) -> dict[str, dict[str, Any]]:
    stacks = dicts(inventory.get("stacks")) if isinstance(inventory, dict) else []
    return {text_of(s, "id") or text_of(s, "name"): s for s in stacks}


def _ordered(stacks: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """Stack ids, each parent followed by its nested stacks, with their depth."""
    children: dict[str, list[str]] = {}
    for key, stack in sorted(stacks.items(), key=lambda kv: text_of(kv[1], "name")):
        parent = text_of(stack, "parent")
        children.setdefault(parent if parent in stacks else "", []).append(key)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()

    def walk(parent: str, depth: int) -> None:
        for key in children.get(parent, []):
            if key not in seen:
                seen.add(key)
                out.append((key, depth))
                walk(key, depth + 1)

    walk("", 0)
    # stacks in a parent cycle (a damaged inventory) are not reachable from the top: list them
    return out + [(key, 0) for key in stacks if key not in seen]


def _resources(stack: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(text_of(r, "name"), text_of(r, "type"), text_of(r, "status"),
             text_of(r, "physical_id")) for r in dicts(stack.get("resources"))]


def _stack_cell(stack: dict[str, Any] | None, absent: str) -> str:
    if stack is None:
        return f'<td class="empty">{esc(absent)}</td>'
    items = "".join(f'<li title="physical id: {esc(p)}">{esc(n)} <span class="type">{esc(t)}'
                    f"</span> {esc(s)}</li>" for n, t, s, p in _resources(stack))
    status = text_of(stack, "status")
    kind = next((c for m, c in STACK_STATUS if m in status), "")
    return f'<td><span class="st {kind}">{esc(status)}</span><ul>{items}</ul></td>'


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None or after is None:
        return "new" if before is None else "gone"
    if text_of(before, "status") != text_of(after, "status"):
        return "changed"
    return "changed" if _resources(before) != _resources(after) else "same"


def inventory_html(before: Any, after: Any) -> str:
    old, new = _stacks(before), _stacks(after)
    recorded = isinstance(after, dict)
    if not old and not new:
        return ('<section id="inventory"><h2>Stack inventory</h2><p class="empty">No inventory '
                "was recorded (save-state did not run).</p></section>")
    note = "" if recorded else ('<p class="empty">After the upgrade: not recorded (this run '
                                "saved no inventory after the upgrade).</p>")
    rows = []
    for key, depth in _ordered({**old, **new}):
        b, a = old.get(key), new.get(key)
        change = _change(b, a) if recorded else ""
        name = text_of(b or a, "name")
        rows.append(f'<tr class="{change}"><td style="padding-left:{8 + 18 * depth}px">'
                    f'{esc(name)}<br><span class="type mono">{esc(key)}</span></td>'
                    f"{_stack_cell(b, 'not there before')}"
                    f"{_stack_cell(a, 'absent after' if recorded else 'not recorded')}"
                    f"<td>{esc(change or '—')}</td></tr>")
    return ('<section id="inventory"><h2>Stack inventory before and after the upgrade</h2>'
            f'{note}<table class="inv"><tr><th>stack</th><th style="width:34%">before the upgrade'
            '</th><th style="width:34%">after the upgrade</th><th>change</th></tr>'
            f"{''.join(rows)}</table></section>")
