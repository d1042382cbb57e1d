"""A new venv is proven to import; when it does not, the line names the module, the error and
the packages involved (the probe runs in a venv's own Python: here, in grenadier's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import InvalidVersion, Version

from grenadier.errors import EnvironmentProblem
from grenadier.releases import probe as probe_module
from grenadier.releases import venv_probe
from grenadier.releases.probe import SCRIPT, probe_venv, unusable_line


def _raised(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_the_package_whose_code_raised_is_named_with_its_version() -> None:
    exc = _raised(lambda: Version("not a version"))
    assert isinstance(exc, InvalidVersion)
    involved = venv_probe.involved(exc, "grenadier")
    assert involved[0].startswith("packaging ")
    assert involved[0].split()[1][0].isdigit()


def test_the_root_cause_of_a_chain_is_what_is_shown() -> None:
    def wrapped() -> None:
        try:
            Version("bad")
        except InvalidVersion as exc:
            raise ImportError("Backend class not found") from exc

    exc = _raised(wrapped)
    assert isinstance(venv_probe._root_cause(exc), InvalidVersion)
    assert venv_probe.involved(exc, "grenadier")[0].startswith("packaging ")


def test_a_module_that_left_its_package_names_who_shipped_it() -> None:
    missing = ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")
    assert venv_probe._raising_dist(missing, "openstack-heat", {}) == "setuptools"


def test_unusable_line_names_module_error_and_packages() -> None:
    line = unusable_line("openstack-heat 26.0.2", {
        "ok": False, "module": "heat.cmd.manage",
        "error": "AttributeError: module 'lib' has no attribute 'GEN_EMAIL'",
        "involved": ["pyOpenSSL 22.0.0", "cryptography 51.0.1"]})
    assert line == ("openstack-heat 26.0.2 does not work in its venv: importing heat.cmd.manage "
                    "failed with AttributeError: module 'lib' has no attribute 'GEN_EMAIL'; "
                    "involved: pyOpenSSL 22.0.0 with cryptography 51.0.1")


def _venv_of_this_python(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return venv


def test_a_distribution_whose_scripts_import_passes(tmp_path: Path) -> None:
    # pytest's own console scripts import in grenadier's Python
    probe_venv(_venv_of_this_python(tmp_path), "pytest", "pytest", tmp_path / "probe.log")


def test_a_module_that_does_not_import_fails_with_one_line(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(probe_module.DEEPER, "pytest", ("grenadier_no_such_module",))
    with pytest.raises(EnvironmentProblem) as raised:
        probe_venv(_venv_of_this_python(tmp_path), "pytest", "pytest 9", None)
    assert raised.value.one_line().startswith(
        "pytest 9 does not work in its venv: importing grenadier_no_such_module failed with "
        "ModuleNotFoundError: No module named 'grenadier_no_such_module'")


def test_the_script_prints_one_json_object_per_module(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--one", "pytest", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"ok": True, "module": "json"}
