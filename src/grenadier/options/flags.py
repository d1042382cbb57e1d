"""The command-line face of run options, declared once beside each option.

A :class:`RunOptions` field says its flag with :func:`flag` (as tox's ``add_config`` or pytest's
``addoption`` do): ``grenadier run``'s parser, the flags a ``--resume`` refuses, a matrix
path's run arguments and the flags other commands share are all built from these declarations.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: the key of a dataclass field's metadata that holds its :class:`Flag`
FLAG = "grenadier.flag"
_NOT_SET: Any = object()


@dataclass(frozen=True)
class Flag:
    """One command-line option: its strings, how argparse reads it, and where it shows."""

    strings: tuple[str, ...]
    help: str
    dest: str = ""
    action: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    #: the ``--help`` section it is listed under (None: the command's own options)
    group: str | None = None
    #: flags that share a key exclude each other
    exclusive: str | None = None
    #: what argparse stores when the flag is not given
    default: Any = None

    def add_to(self, parser: argparse._ActionsContainer, **changes: Any) -> None:
        """Add this flag to ``parser`` (``changes`` override e.g. its help for one command)."""
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help, "default": self.default}
        if self.action is not None:
            kwargs["action"] = self.action
        for key in ("type", "choices", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        kwargs.update(changes)
        parser.add_argument(*self.strings, **kwargs)


def flag(*strings: str, help: str, default: Any = _NOT_SET, cli_default: Any = _NOT_SET,
         **how: Any) -> Any:
    """A dataclass field with a command-line flag; ``cli_default`` is what argparse stores when
    the flag is absent, when that differs from the field's default (e.g. None: "not given")."""
    factory = list if how.get("action") == "append" or default == [] else None
    stored = cli_default if cli_default is not _NOT_SET else ([] if factory else default)
    meta = {FLAG: Flag(strings, help, default=stored, **how)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flags_of(cls: type) -> list[Flag]:
    """The flags the fields of dataclass ``cls`` declare, in field order, dest set."""
    found = []
    for item in dataclasses.fields(cls):
        declared = item.metadata.get(FLAG)
        if declared is not None:
            found.append(dataclasses.replace(declared, dest=declared.dest or item.name))
    return found


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag]) -> None:
    """Add ``flags`` to ``parser``, each in its ``--help`` group and exclusive group."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for item in flags:
        container: argparse._ActionsContainer = parser
        if item.group is not None:
            container = groups.setdefault(item.group, parser.add_argument_group(item.group))
        if item.exclusive is not None:
            if item.exclusive not in exclusive:
                exclusive[item.exclusive] = container.add_mutually_exclusive_group()
            container = exclusive[item.exclusive]
        item.add_to(container)


def strings_of(flags: Iterable[Flag], dests: Iterable[str]) -> dict[str, str]:
    """Option string -> dest, for the flags that store into ``dests``."""
    wanted = set(dests)
    return {string: item.dest for item in flags if item.dest in wanted
            for string in item.strings}
