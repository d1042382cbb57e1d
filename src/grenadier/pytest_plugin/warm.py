"""A test phase's pytest, started before its step and held until the step begins.

    python -m grenadier.pytest_plugin.warm GO_FILE PARENT_PID [MODULE...] -- PYTEST_ARGS...

A pytest process spends its first half second importing pytest, its plugins and the suite's
libraries (the MODULEs), then parsing its arguments and loading its plugins. Started while the
step before runs (most of which waits for Heat), it has done so when ``GO_FILE`` appears: it
is held at the end of its configuration, before its session starts (the session's start reads
the run's endpoint, which the step before may still change), then runs the session and exits
with pytest's code. It exits without running anything once PARENT_PID (the run that started
it) is no longer its parent: that run is gone.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

import pytest

#: seconds between two looks for the go file
POLL_SECONDS = 0.02
#: exit code when the run that started it went away before its step came
ABANDONED = 3


class Hold:
    """The pytest plugin that holds the session until the go file appears."""

    def __init__(self, go: str, parent: int) -> None:
        self.go = go
        self.parent = parent

    @pytest.hookimpl(trylast=True)  # after every other plugin's configuration
    def pytest_configure(self, config: pytest.Config) -> None:
        while not os.path.exists(self.go):
            if os.getppid() != self.parent:
                pytest.exit("the run that started this phase is gone", returncode=ABANDONED)
            time.sleep(POLL_SECONDS)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") < 2 or not argv[1].isdigit():
        print("usage: python -m grenadier.pytest_plugin.warm GO_FILE PARENT_PID [MODULE...] "
              "-- PYTEST_ARGS...", file=sys.stderr)
        return 2
    split = argv.index("--")
    go, parent, modules, args = argv[0], int(argv[1]), argv[2:split], argv[split + 1:]
    # what each phase imports first: grenadier's plugin, the suite's libraries
    import grenadier.pytest_plugin.plugin  # noqa: F401

    for module in modules:
        importlib.import_module(module)
    return int(pytest.main(args, plugins=[Hold(go, parent)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
