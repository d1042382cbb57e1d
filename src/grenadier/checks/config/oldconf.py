"""Old configuration on new code: what a heat.conf sets that the target release ignores.

oslo.config silently ignores an option it does not know, so a setting the target no longer
reads just stops working: nothing fails at start-up. This module reads the deployer's files
itself (to keep file and line numbers, which ``oslo-config-validator`` does not give) and checks
each setting against the target's option inventory. It also collects the deprecation warnings a
started target logs, as grenade does with its deprecations log.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from grenadier.checks.config.inventory import Inventory, OptionInfo, normalize
from grenadier.errors import UsageError
from grenadier.masking import mask_setting
from grenadier.model.findings import Finding

CHECK = "config-file"

#: Options of keystoneauth1's usual plugins (password, v3password, token, v3applicationcredential,
#: v3oidcpassword, v3totp, admin_token, http_basic), as listed by ``loading.get_plugin_options``
#: in a 27.0.1 venv. keystoneauth registers them at run time in any group with ``auth_type``
#: (``[keystone_authtoken]``, ``[trustee]`` ...), so no generator lists them all.
KEYSTONEAUTH_PLUGIN_OPTIONS = frozenset({
    "access_token_endpoint", "access_token_type", "application_credential_id",
    "application_credential_name", "application_credential_secret", "auth_methods", "auth_url",
    "client_id", "client_secret", "default_domain_id", "default_domain_name",
    "discovery_endpoint", "domain_id", "domain_name", "endpoint", "identity_provider",
    "idp_otp_key", "passcode", "password", "project_domain_id", "project_domain_name",
    "project_id", "project_name", "protocol", "scope", "system_scope", "tenant_id",
    "tenant_name", "token", "trust_id", "url", "user_domain_id", "user_domain_name", "user_id",
    "user_name", "username",
})


@dataclass(frozen=True)
class ConfSetting:
    """One ``key = value`` of an ini file, where it was written."""

    path: Path
    section: str
    key: str
    value: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line} [{self.section}] {self.key}"

    def shown_value(self, *options: OptionInfo | None) -> str:
        """The value as a report may show it: masked when one of ``options`` (what the
        releases know under this name) is secret, or when none is known and the name says
        so; URL credentials in it masked in any case."""
        known = [opt for opt in options if opt is not None]
        secret = any(opt.secret for opt in known) if known else None
        return mask_setting(self.key, self.value, secret=secret)

    def shown(self, *options: OptionInfo | None) -> str:
        return f"{self.key} = {self.shown_value(*options)}"


@dataclass(frozen=True)
class ParsedConf:
    path: Path
    settings: tuple[ConfSetting, ...]
    #: (line, message) of what oslo.config itself would refuse to parse
    errors: tuple[tuple[int, str], ...] = ()


def parse_conf(path: Path) -> ParsedConf:
    """The settings of an oslo.config ini file, in order, with their line numbers.

    Follows ``oslo_config.iniparser``: ``#``/``;`` comments at the start of a line,
    ``key = value`` or ``key: value`` (split at the first of the two), lines starting with a
    blank continue the previous value until a blank line; a key before any section gets "".
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
    settings: list[ConfSetting] = []
    errors: list[tuple[int, str]] = []
    section, open_value = "", False
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        if not line:
            open_value = False
        elif line.startswith((" ", "\t")):
            if not open_value:
                errors.append((number, "unexpected continuation line"))
        elif line.startswith("["):
            open_value = False
            if line.endswith("]") and len(line) > 2:
                section = line[1:-1]
            else:
                errors.append((number, "invalid section header"))
        elif line.startswith(("#", ";")):
            open_value = False
        else:
            key, value = _split(line)
            if key:
                settings.append(ConfSetting(path, section, key, value, number))
            else:
                errors.append((number, "no key, or no ':' or '=' in assignment"))
            open_value = bool(key)
    return ParsedConf(path, tuple(settings), tuple(errors))


def _split(text: str) -> tuple[str, str]:
    colon, equal = text.find(":"), text.find("=")
    if colon < 0 and equal < 0:
        return "", ""
    cut = equal if colon < 0 or 0 <= equal < colon else colon
    value = text[cut + 1:].strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return text[:cut].strip(), value


# -- checking settings against the target ----------------------------------------------------


def _auth_plugin_option(setting: ConfSetting, inventory: Inventory) -> bool:
    return (inventory.get(setting.section, "auth_type") is not None
            and normalize(setting.key) in KEYSTONEAUTH_PLUGIN_OPTIONS)


def _known_in(inventory: Inventory | None, s: ConfSetting) -> OptionInfo | None:
    if inventory is None:
        return None
    return inventory.get(s.section, s.key) or inventory.replacing(s.section, s.key)


def _unknown(setting: ConfSetting, target: Inventory, base: Inventory | None) -> Finding:
    before = _known_in(base, setting)
    deprecated_before = before is not None and (
        before.deprecated_for_removal or before.key != (setting.section, normalize(setting.key)))
    # An option the base accepted without any deprecation, now silently dropped, is the upgrade
    # bug grenade's Theory of Upgrade forbids: the deployer had no warning.
    severity = "error" if before is not None and not deprecated_before and before.is_heat \
        else "warning"
    history = ("" if before is None else
               f"; {base.release if base else 'base'} knew it"
               f"{' (deprecated)' if deprecated_before else ' (not deprecated)'}")
    return Finding(
        check=CHECK, severity=severity,
        what=f"{target.release} ignores [{setting.section}] {setting.key}: unknown option",
        where=setting.where,
        expected=f"an option {target.release} registers",
        found=f"{setting.shown(before)}{history}",
        remedy="remove the setting, or replace it with the option that took over its role "
               "(see the release notes)",
    )


def _deprecated(setting: ConfSetting, opt: OptionInfo, target: Inventory) -> Finding | None:
    if opt.key != (setting.section, normalize(setting.key)):
        return Finding(
            check=CHECK, severity="warning",
            what=f"[{setting.section}] {setting.key} is a deprecated name in {target.release}",
            where=setting.where, expected=opt.label, found=setting.shown(opt),
            remedy=f"rename the setting to {opt.label}",
        )
    if opt.deprecated_for_removal:
        return Finding(
            check=CHECK, severity="warning",
            what=f"[{setting.section}] {setting.key} is deprecated for removal in "
                 f"{target.release}",
            where=setting.where, found=opt.deprecated_reason or "deprecated for removal",
            remedy="stop setting it before the next release drops it",
        )
    return None


def _bad_choice(setting: ConfSetting, opt: OptionInfo, target: Inventory) -> Finding | None:
    # A value outside the choices makes oslo.config raise when Heat reads the option, which
    # is how a restricted option ([clients] endpoint_type in 27.0.1) breaks an old config.
    if not opt.choices or opt.type not in ("string value", "integer value"):
        return None
    if setting.value in opt.choices:
        return None
    return Finding(
        check=CHECK, severity="warning",
        what=f"{target.release} does not accept {setting.shown_value(opt)!r} for {opt.label}",
        where=setting.where, expected=f"one of {', '.join(opt.choices)}",
        found=setting.shown(opt),
        remedy="use one of the accepted values (oslo.config fails when Heat reads the option)",
    )


def check_settings(
    settings: Iterable[ConfSetting], target: Inventory, base: Inventory | None = None
) -> list[Finding]:
    """Every setting the target ignores or only accepts as deprecated, in file order."""
    findings: list[Finding] = []
    for setting in settings:
        if not setting.section:
            findings.append(Finding(
                check=CHECK, severity="error", what=f"{setting.key} is outside any section",
                where=setting.where, remedy="put it under [DEFAULT] or its own section"))
            continue
        opt = _known_in(target, setting)
        if opt is not None:
            problems = [_deprecated(setting, opt, target), _bad_choice(setting, opt, target)]
            findings.extend(p for p in problems if p is not None)
        elif not _auth_plugin_option(setting, target):
            findings.append(_unknown(setting, target, base))
    return findings


def check_config_files(
    paths: Iterable[Path], target: Inventory, base: Inventory | None = None,
    ignore: Collection[tuple[str, str]] = (),
) -> list[Finding]:
    """Check each file on its own (a user's ``--config`` files and the run's heat.conf).

    ``ignore``: (section, option) pairs the harness itself sets and reads, not Heat.
    """
    findings: list[Finding] = []
    for path in paths:
        parsed = parse_conf(path)
        findings.extend(
            Finding(check=CHECK, severity="error", what=f"oslo.config cannot parse {path}",
                    where=f"{path}:{line}", found=message, remedy="fix the file")
            for line, message in parsed.errors)
        settings = [s for s in parsed.settings if (s.section, s.key) not in ignore]
        findings.extend(check_settings(settings, target, base))
    return findings


# -- deprecation warnings in the target's logs -----------------------------------------------

#: ``2026-11-26 05:56:47.052 7722 WARNING oslo_config.cfg [-] message`` (oslo.log's format)
_OSLO_LOG = re.compile(
    r"^\d{4}-\d\d-\d\d[ T][\d:.,]+\s+\d+\s+(?P<level>[A-Z]+)\s+(?P<logger>\S+)\s+"
    r"(?:\[[^\]]*\]\s+)?(?P<message>.*)$")
#: ``/venv/.../loopingcall.py:19: EventletDeprecationWarning: message`` (Python's warnings)
_PY_WARNING = re.compile(r"^(?P<file>\S+\.py):(?P<line>\d+): (?P<category>\w*Warning): ?(?P<m>.*)$")
_SITE = re.compile(r"^.*?/site-packages/")


def _py_warning_key(match: re.Match[str], following: list[str]) -> str:
    message = match.group("m").strip()
    if not message:
        # Some warnings start their text on the next line (eventlet's does).
        message = next((line.strip() for line in following if line.strip()), "")
    where = f"{_SITE.sub('', match.group('file'))}:{match.group('line')}"
    return f"{match.group('category')} at {where}: {message}"


def _skip_warning_body(lines: list[str], start: int) -> int:
    """Index after a Python warning's message lines and its indented source line."""
    index = start
    while index < len(lines) and index - start < 20:
        line = lines[index]
        if _OSLO_LOG.match(line) or _PY_WARNING.match(line):
            return index
        index += 1
        if line.startswith("  "):  # the source line ends a warning
            return index
    return index


def deprecation_keys(text: str) -> list[str]:
    """One key per deprecation warning in ``text``, the same key for the same warning."""
    lines = text.splitlines()
    keys: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        warning = _PY_WARNING.match(line)
        if warning and "deprecat" in (line + " ".join(lines[index:index + 3])).lower():
            keys.append(_py_warning_key(warning, lines[index:index + 3]))
            index = _skip_warning_body(lines, index)
            continue
        if "deprecat" not in line.lower():
            continue
        record = _OSLO_LOG.match(line)
        if record:
            message = _SITE.sub("", record.group("message").strip())
            keys.append(f"{record.group('logger')}: {message}")
        else:
            keys.append(line.strip())
    return keys


def collect_deprecation_warnings(log_files: Iterable[Path]) -> dict[str, int]:
    """Deprecation warnings found in the target's logs, grouped, with counts (most first).

    Covers oslo.config's ``Deprecated: Option ...``, oslo.log's versionutils, Heat's own
    ``... is DEPRECATED`` resource messages, and Python ``*DeprecationWarning`` (debtcollector
    and libraries) whether printed on stderr or logged through ``py.warnings``.
    """
    counts: Counter[str] = Counter()
    for path in log_files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # a service that never started has no log: not this check's business
        counts.update(deprecation_keys(text))
    return dict(counts.most_common())


def deprecation_findings(counts: dict[str, int]) -> list[Finding]:
    """The collected warnings as ``info`` findings, for the run's report."""
    return [Finding(check="deprecation-warnings", severity="info", what=key[:300],
                    found=f"{count} time(s)", remedy="see the target's release notes")
            for key, count in counts.items()]
