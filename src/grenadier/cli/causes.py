"""The cause of a failed test in console lines: the stack, its final status, Heat's reason.

A test's message can be long (an aggregate of every stack that failed, each with its events);
the console shows its first line and, when that line only announces a list (``2 of 8
failed:``), the list's items. Each line is compacted (stack ids, exception class names and the
"wanted" status dropped: the stack's name and final status say it) and fitted to the width,
cutting the test name before the cause and the cause's tail last.
"""

from __future__ import annotations

import re

#: a stack's id beside its name: ``grenadier-params-1a2b (<uuid>)``
_UUID = re.compile(r" \([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)")
#: what a stack wait error says it waited for, before the status it found
_WANTED = re.compile(r"wanted [A-Z_]+(?: or [A-Z_]+)*, (?:failed|(?P<how>timed out after "
                     r"\d+ s)): ")
#: an aggregate's item: ``- <label>: <exception class>: <message>``
_ITEM = re.compile(r"^- (?P<label>.+?): (?:[A-Za-z_][\w.]*: )?(?P<rest>.*)$")
#: an exception class before its message: ``AssertionError: ``, ``grenadier.x.HeatError: ``
_CLASS = re.compile(r"^(?:[a-z_]\w*\.)*(?:AssertionError|Failed|[A-Z]\w*Error): ")
#: a stack's id in an API path: ``stacks/<name>/<uuid>/resources``
_PATH_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
#: a Heat API URL up to the project: the method and the path after it say the call
_HEAT_URL = re.compile(r"https?://[^/\s]+/v1/[^/\s]+/")
#: pytest's words for a test that failed in a fixture: ``failed on setup with "..."``
_FIXTURE = re.compile(r'^failed on (?P<when>setup|teardown) with "(?P<text>.*?)"?$')
#: items shown under a test whose first line announces a list
ITEMS_SHOWN = 8
#: the cause keeps at least this many characters before the test name is shortened
CAUSE_ROOM = 60


def compact(text: str) -> str:
    """One line of a message without what the console does not need."""
    text = text.strip()
    fixture = _FIXTURE.match(text)
    if fixture is not None:
        return f"{fixture.group('when')}: {compact(fixture.group('text'))}"
    text = _HEAT_URL.sub("", _UUID.sub("", text))
    text = _PATH_ID.sub("", text)
    text = _WANTED.sub(lambda m: f"{m.group('how')}: " if m.group("how") else "", text)
    text = _CLASS.sub("", text)
    return re.sub(r"^stack (\S+: [A-Z]+_[A-Z_]+: )", r"\1", text)  # name: STATUS: reason


def _item(first: str, next_line: str) -> str:
    """An aggregate's item, its label once: ``- params stack-x: UPDATE_FAILED: reason``."""
    match = _ITEM.match(first)
    if match is None:
        return compact(first)
    label, rest = match.group("label"), compact(match.group("rest"))
    stack = re.match(r"(?:stack )?(\S+): ", rest)
    if stack is not None and stack.group(1) in label:
        rest = rest[stack.end():]
    for word in label.split():  # an API path through the item's own stack
        rest = rest.replace(f" stacks/{word}/", " .../").replace(f" stacks/{word} ", " ... ")
    if rest.endswith(":") and next_line.strip():
        rest = f"{rest} {compact(next_line)}"  # e.g. a diff report: its first difference
    return f"- {label}: {rest}"


def items(lines: list[str]) -> list[str]:
    """The top-level entries under a first line that ends with ``:``: ``- `` items when there
    are some, else the least indented lines; the list ends at a line that is neither (e.g.
    the ``assert`` pytest adds)."""
    end = next((i for i, line in enumerate(lines)
                if line.strip() and not line.startswith((" ", "- "))), len(lines))
    lines = lines[:end]
    body = [line for line in lines if line.strip()]
    if any(line.startswith("- ") for line in body):
        found = []
        for index, line in enumerate(lines):
            if line.startswith("- "):
                after = lines[index + 1] if index + 1 < len(lines) else ""
                found.append(_item(line, after if after.startswith(" ") else ""))
        return found
    indent = min((len(line) - len(line.lstrip()) for line in body), default=0)
    return [compact(line) for line in body if len(line) - len(line.lstrip()) == indent]


def fit(prefix: str, name: str, cause: str, width: int) -> str:
    """``prefix + name: cause`` within ``width``: the name shortened first, the cause's
    tail cut last (its start names the stack and the status)."""
    line = f"{prefix}{name}: {cause}" if name else f"{prefix}{cause}"
    if len(line) <= width:
        return line
    if name:
        room = max(10, width - len(prefix) - 2 - min(len(cause), CAUSE_ROOM))
        if len(name) > room:
            name = name.split("::")[-1]  # the test without its module
        if len(name) > room:
            keep = room - 3
            name = f"{name[:keep // 2]}...{name[len(name) - (keep - keep // 2):]}"
        line = f"{prefix}{name}: {cause}"
    return line if len(line) <= width else line[:max(width - 3, 1)] + "..."


def cause_lines(name: str, message: str, width: int, indent: int = 9) -> list[str]:
    """A failed test on the console: ``x name: cause``, then the items of a list it announces
    (at most ``ITEMS_SHOWN``), every line within ``width``."""
    lines = message.splitlines()
    head = compact(lines[0]) if lines else "(no message)"
    out = [fit(" " * indent + "x ", name, head, width)]
    if head.endswith(":"):
        found = items(lines[1:])
        out += [fit(" " * (indent + 2), "", item, width) for item in found[:ITEMS_SHOWN]]
        if len(found) > ITEMS_SHOWN:
            out.append(" " * (indent + 2) + f"... and {len(found) - ITEMS_SHOWN} more "
                       "(report.json)")
    return out
