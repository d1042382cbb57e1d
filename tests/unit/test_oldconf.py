"""Old config on new code: findings carry file, section and line; deprecation logs are counted."""

from __future__ import annotations

from pathlib import Path

from grenadier.checks.config.inventory import Inventory, OptionInfo
from grenadier.checks.config.oldconf import (
    check_config_files,
    collect_deprecation_warnings,
    parse_conf,
)


def opt(group: str, name: str, **kw: object) -> OptionInfo:
    kw.setdefault("type", "string value")
    return OptionInfo(group=group, name=name, **kw)  # type: ignore[arg-type]


COMMON = (
    opt("DEFAULT", "debug", type="boolean value"),
    opt("DEFAULT", "log_dir"),
    opt("DEFAULT", "executor_thread_pool_size",
        deprecated_opts=(("DEFAULT", "rpc_thread_pool_size"),)),
    opt("DEFAULT", "deferred_auth_method", deprecated_for_removal=True,
        deprecated_reason="broken with keystone v3"),
    opt("database", "connection"),
    opt("clients", "endpoint_type", choices=("publicURL", "public", "internal")),
    opt("keystone_authtoken", "auth_type", owner="keystonemiddleware.auth_token"),
)
BASE = Inventory("26.0.2", (*COMMON, opt("clients_vitrage", "insecure", type="boolean value"),
                            opt("ec2authtoken", "auth_uri", deprecated_for_removal=True)))
TARGET = Inventory("27.0.1", COMMON)

CONF = """\
# heat.conf written by an old deployment
[DEFAULT]
debug = true
log-dir = /var/log/heat
rpc_thread_pool_size: 8
deferred_auth_method = password
no_such_option = 1

[database]
connection = postgresql://heat@/heat
  ?host=/run/pg

[clients_vitrage]
; a comment
insecure = true

[ec2authtoken]
auth_uri = "http://keystone/v3"

[keystone_authtoken]
auth_type = password
password = secret
"""


def write(tmp_path: Path, text: str = CONF) -> Path:
    path = tmp_path / "heat.conf"
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_keeps_sections_and_line_numbers(tmp_path: Path) -> None:
    parsed = parse_conf(write(tmp_path))
    assert parsed.errors == ()
    got = [(s.section, s.key, s.value, s.line) for s in parsed.settings]
    assert got[:4] == [("DEFAULT", "debug", "true", 3), ("DEFAULT", "log-dir", "/var/log/heat", 4),
                       ("DEFAULT", "rpc_thread_pool_size", "8", 5),
                       ("DEFAULT", "deferred_auth_method", "password", 6)]
    # the continuation line (11) is part of connection, not a setting of its own
    assert ("database", "connection", 10) in [(s.section, s.key, s.line) for s in parsed.settings]
    assert ("clients_vitrage", "insecure", "true", 15) in got
    assert ("ec2authtoken", "auth_uri", "http://keystone/v3", 18) in got  # quotes stripped


def test_parse_reports_what_oslo_config_would_refuse(tmp_path: Path) -> None:
    parsed = parse_conf(write(tmp_path, "[DEFAULT]\n  indented = 1\njunk\n[]\n"))
    assert [line for line, _ in parsed.errors] == [2, 3, 4]


def test_old_config_on_new_code(tmp_path: Path) -> None:
    path = write(tmp_path)
    findings = {f.where.split(" ", 1)[0]: f for f in check_config_files([path], TARGET, BASE)}
    assert set(findings) == {f"{path}:{n}" for n in (5, 6, 7, 15, 18)}
    vitrage = findings[f"{path}:15"]
    assert vitrage.severity == "error"  # the base accepted it without any deprecation
    assert vitrage.where == f"{path}:15 [clients_vitrage] insecure"
    assert "27.0.1 ignores [clients_vitrage] insecure" in vitrage.what
    assert findings[f"{path}:18"].severity == "warning"  # it was deprecated in the base
    assert findings[f"{path}:7"].severity == "warning"  # unknown to both: a typo?
    assert "executor_thread_pool_size" in findings[f"{path}:5"].remedy
    assert "deprecated for removal" in findings[f"{path}:6"].what


def test_clean_config_gives_no_finding(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\ndebug = false\n[database]\nconnection = sqlite://\n"
                           "[keystone_authtoken]\nauth_type = password\nauth_url = http://k\n")
    assert check_config_files([path], TARGET, BASE) == []


def test_value_outside_the_target_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "[clients]\nendpoint_type = public\n\n[clients]\nendpoint_type = pub\n")
    [finding] = check_config_files([path], TARGET, BASE)
    assert finding.where == f"{path}:5 [clients] endpoint_type"
    assert "'pub'" in finding.what


def test_without_base_unknown_options_are_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "[clients_vitrage]\ninsecure = true\n")
    [finding] = check_config_files([path], TARGET)
    assert (finding.severity, finding.where) == ("warning", f"{path}:2 [clients_vitrage] insecure")


SECRETS = Inventory("27.0.1", (
    opt("cache", "password", secret=True, deprecated_opts=(("cache", "memcache_password"),)),
    opt("cache", "backend", choices=("dogpile.cache.null", "oslo_cache.dict"), secret=True),
    opt("DEFAULT", "host")))


def test_secret_values_are_masked_in_findings(tmp_path: Path) -> None:
    """A secret must not reach a report through a finding that quotes the setting: an option
    the inventory declares secret (here under its deprecated name, and outside its choices),
    an option no release knows whose name says it is a password, a URL with credentials."""
    path = write(tmp_path, "[cache]\nmemcache_password = s3cret-one\nbackend = s3cret-two\n"
                           "[DEFAULT]\nrabbit_password = s3cret-three\nhost = grenadier\n"
                           "[ec2authtoken]\n"
                           "auth_uri = http://heat:s3cret-four@k:5000/v3?password=s3cret-five\n")
    findings = check_config_files([path], SECRETS)
    assert len(findings) == 4, findings
    shown = "\n".join(line for f in findings for line in f.lines())
    assert "s3cret" not in shown, shown
    assert "memcache_password = ***" in shown
    assert "rabbit_password = ***" in shown
    assert "auth_uri = http://heat:***@k:5000/v3?password=***" in shown


def test_values_that_are_not_secret_stay_readable(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nrpc_thread_pool_size = 8\nno_such_option = plain\n")
    shown = "\n".join(line for f in check_config_files([path], TARGET, BASE)
                      for line in f.lines())
    assert "rpc_thread_pool_size = 8" in shown
    assert "no_such_option = plain" in shown


LOG = """\
2026-11-26 05:56:45.098 7722 WARNING oslo_config.cfg [-] Deprecated: Option "profiler_enabled" \
from group "profiler" is deprecated. Use option "enabled" from group "profiler".
2026-11-26 05:56:47.038 7722 WARNING heat.engine.environment [-] OS::Aodh::Alarm is DEPRECATED. \
Use OS::Aodh::GnocchiAggregationByResourcesAlarm instead.
2026-11-26 05:56:47.041 7722 INFO heat.engine.environment [-] Registered: OS::Heat::None
2026-11-26 05:57:45.098 7723 WARNING oslo_config.cfg [req-1 - - - -] Deprecated: Option \
"profiler_enabled" from group "profiler" is deprecated. Use option "enabled" from group "profiler".
"""
STDERR = """\
/venv/lib/python3.11/site-packages/oslo_service/backend/_eventlet/loopingcall.py:19: \
EventletDeprecationWarning:
Eventlet is deprecated. It is currently being maintained in bugfix mode, and
we strongly recommend against using it for new projects.

  from eventlet import event
/venv/lib/python3.11/site-packages/x/y.py:3: DeprecationWarning: old() is deprecated
  old()
/venv/lib/python3.11/site-packages/x/z.py:9: UserWarning: nothing to see
  z()
"""


def test_deprecation_warnings_are_grouped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "engine.log").write_text(LOG, encoding="utf-8")
    (tmp_path / "engine.err").write_text(STDERR, encoding="utf-8")
    counts = collect_deprecation_warnings(
        [tmp_path / "engine.log", tmp_path / "engine.err", tmp_path / "missing.log"])
    assert counts == {
        'oslo_config.cfg: Deprecated: Option "profiler_enabled" from group "profiler" is '
        'deprecated. Use option "enabled" from group "profiler".': 2,
        "heat.engine.environment: OS::Aodh::Alarm is DEPRECATED. Use "
        "OS::Aodh::GnocchiAggregationByResourcesAlarm instead.": 1,
        "EventletDeprecationWarning at oslo_service/backend/_eventlet/loopingcall.py:19: "
        "Eventlet is deprecated. It is currently being maintained in bugfix mode, and": 1,
        "DeprecationWarning at x/y.py:3: old() is deprecated": 1,
    }
