"""SIGINT, SIGTERM and SIGHUP end grenadier the same clean way, once; stopping is never cut
short by a second signal."""

from __future__ import annotations

import subprocess
import sys

import pytest

PY = sys.executable
#: sends itself the signals named on its command line at points of its life, and prints what
#: happened: where KeyboardInterrupt was raised, and whether the shielded block ran to its end
SCRIPT = """
import os, signal, sys
from grenadier.execute import signals
signals.install()
first, during = (getattr(signal, name, None) for name in sys.argv[1:3])
def hit(sig):
    if sig is not None:
        os.kill(os.getpid(), sig)  # to itself: handled before kill() returns to Python
try:
    hit(first)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted by the first signal")
try:
    with signals.shielded():
        hit(during)
        hit(during)
        print("stopping finished")
except KeyboardInterrupt:
    print("interrupted after stopping")
"""


def _run(*names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-c", SCRIPT, *names], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_the_first_signal_interrupts_and_later_ones_do_not(name: str) -> None:
    result = _run(name, name)
    assert result.stdout.splitlines() == ["interrupted by the first signal",
                                          "stopping finished"], result.stderr
    assert f"{name}: stopping the run's services first" in result.stderr


def test_a_first_signal_during_a_shielded_block_interrupts_after_it() -> None:
    result = _run("none", "SIGINT")
    assert result.stdout.splitlines() == ["not interrupted", "stopping finished",
                                          "interrupted after stopping"], result.stderr


def test_a_later_signal_outside_any_shield_is_ignored_with_a_word() -> None:
    code = ("import os, signal\nfrom grenadier.execute import signals\n"
            "signals.install()\n"
            "try:\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "except KeyboardInterrupt:\n    print('interrupted')\n"
            "os.kill(os.getpid(), signal.SIGINT)\nprint('still stopping')\n")
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.stdout.splitlines() == ["interrupted", "still stopping"], result.stderr
    assert "SIGINT ignored: still stopping the run's services" in result.stderr


def test_signals_after_the_end_leave_the_exit_code_alone() -> None:
    code = ("import os, signal, sys\nfrom grenadier.execute import signals\n"
            "signals.install()\nsignals.settled()\n"
            "os.kill(os.getpid(), signal.SIGINT)\nos.kill(os.getpid(), signal.SIGHUP)\n"
            "sys.exit(130)\n")
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 130, result.stderr
