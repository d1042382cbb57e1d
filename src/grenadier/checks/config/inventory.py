"""The configuration options a Heat release knows, taken from the release itself.

The inventory comes from ``oslo-config-generator --format json`` run with the release's own
binary over the ``oslo.config.opts`` namespaces the release declares (read from its
``openstack_heat-*.dist-info/entry_points.txt``, never hard-coded) plus the library namespaces
Heat's own ``config-generator.conf`` lists. Grenadier never imports Heat: the generator does, in
the release's venv.

One generator run takes about 3 s (it imports Heat and every library); the result is cached in
``<venv>/grenadier-options.json``, keyed by a hash of the venv's dist-info, so that a venv whose
packages did not change is never asked twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, run
from grenadier.host import write_atomic
from grenadier.releases.release import Release

#: Library namespaces of Heat's own ``etc/heat/heat-config-generator.conf`` (openstack/heat
#: master; the file is not shipped in the wheel), plus ``oslo.db`` and ``oslo.concurrency`` whose
#: ``[database]`` / ``[oslo_concurrency]`` sections deployers set in heat.conf. Those a venv does
#: not provide are skipped and recorded as missing.
LIBRARY_NAMESPACES = (
    "keystonemiddleware.auth_token",
    "oslo.cache",
    "oslo.concurrency",
    "oslo.db",
    "oslo.log",
    "oslo.messaging",
    "oslo.middleware",
    "oslo.policy",
    "oslo.reports",
    "oslo.service.periodic_task",
    "oslo.service.service",
    "oslo.service.sslutils",
    "oslo.versionedobjects",
    "osprofiler",
)
#: Heat's own namespaces are the ``heat.*`` ones; ``heat_integrationtests.*`` configures the
#: functional tests, not a Heat service.
HEAT_NAMESPACE_PREFIX = "heat."
CACHE_FILE = "grenadier-options.json"
#: bump when OptionInfo or the cache layout changes, so old caches are ignored
CACHE_FORMAT = 2
GENERATOR_TIMEOUT = 300.0
#: how long a probe script run with a release's python may take (it imports Heat)
PROBE_TIMEOUT = 300.0


def normalize(name: str) -> str:
    """oslo.config accepts ``log-dir`` and ``log_dir`` alike in a file: compare on underscores."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class OptionInfo:
    """One option of one release, as the release's generator describes it."""

    group: str
    name: str
    type: str
    default: str = "<None>"
    choices: tuple[str, ...] = ()
    deprecated_for_removal: bool = False
    deprecated_reason: str = ""
    deprecated_since: str = ""
    #: older (group, name) pairs oslo.config still accepts for this option
    deprecated_opts: tuple[tuple[str, str], ...] = ()
    help: str = ""
    #: "heat", or the library namespace that registers the option
    owner: str = "heat"
    namespace: str = ""
    minimum: str = ""
    maximum: str = ""
    #: declared ``secret=True``: its value (and default) is never shown
    secret: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, normalize(self.name))

    @property
    def is_heat(self) -> bool:
        return self.owner == "heat"

    @property
    def label(self) -> str:
        return f"[{self.group}] {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptionInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["choices"] = tuple(known.get("choices", ()))
        known["deprecated_opts"] = tuple(
            (str(g), str(n)) for g, n in known.get("deprecated_opts", ())
        )
        return cls(**known)


@dataclass(frozen=True)
class Inventory:
    """Every option one release knows: Heat's own and those of the libraries it uses."""

    release: str
    options: tuple[OptionInfo, ...]
    heat_namespaces: tuple[str, ...] = ()
    library_namespaces: tuple[str, ...] = ()
    missing_namespaces: tuple[str, ...] = ()
    _index: dict[tuple[str, str], OptionInfo] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _aliases: dict[tuple[str, str], OptionInfo] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for opt in self.options:
            self._index.setdefault(opt.key, opt)
            for group, name in opt.deprecated_opts:
                self._aliases.setdefault((group, normalize(name)), opt)

    def get(self, group: str, name: str) -> OptionInfo | None:
        """The option known under exactly this group and name."""
        return self._index.get((group, normalize(name)))

    def replacing(self, group: str, name: str) -> OptionInfo | None:
        """The option that still accepts ``[group] name`` as a deprecated alias, if any."""
        return self._aliases.get((group, normalize(name)))

    def groups(self) -> set[str]:
        return {opt.group for opt in self.options}

    def heat(self) -> list[OptionInfo]:
        return [opt for opt in self.options if opt.is_heat]

    def library(self) -> list[OptionInfo]:
        return [opt for opt in self.options if not opt.is_heat]

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "heat_namespaces": list(self.heat_namespaces),
            "library_namespaces": list(self.library_namespaces),
            "missing_namespaces": list(self.missing_namespaces),
            "options": [opt.to_dict() for opt in self.options],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inventory:
        return cls(
            release=str(data.get("release", "")),
            options=tuple(OptionInfo.from_dict(o) for o in data["options"]),
            heat_namespaces=tuple(data.get("heat_namespaces", ())),
            library_namespaces=tuple(data.get("library_namespaces", ())),
            missing_namespaces=tuple(data.get("missing_namespaces", ())),
        )


# -- reading the generator's JSON ---------------------------------------------------------------


def _render_default(value: object) -> str:
    """A default as a heat.conf sample shows it, so that reports read like the docs."""
    if value is None:
        return "<None>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_render_default(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{_render_default(v)}" for k, v in value.items())
    return str(value)


def _option(group: str, raw: dict[str, Any], heat_namespaces: set[str]) -> OptionInfo:
    namespace = str(raw.get("namespace") or "")
    # The sample default replaces machine-dependent ones (host name, process name).
    default = raw["sample_default"] if raw.get("sample_default") is not None else raw["default"]
    return OptionInfo(
        group=group,
        name=str(raw["name"]),
        type=str(raw.get("type") or ""),
        default=_render_default(default),
        choices=tuple(_render_default(c[0] if isinstance(c, list) else c)
                      for c in raw.get("choices") or ()),
        deprecated_for_removal=bool(raw.get("deprecated_for_removal")),
        deprecated_reason=str(raw.get("deprecated_reason") or ""),
        deprecated_since=str(raw.get("deprecated_since") or ""),
        deprecated_opts=tuple(
            (str(d.get("group") or group), str(d["name"])) for d in raw.get("deprecated_opts") or ()
        ),
        help=next(iter(str(raw.get("help") or "").strip().splitlines()), ""),
        owner="heat" if namespace in heat_namespaces else namespace,
        namespace=namespace,
        minimum="" if raw.get("min") is None else str(raw["min"]),
        maximum="" if raw.get("max") is None else str(raw["max"]),
        secret=bool(raw.get("secret")),
    )


def options_from_generator(
    data: dict[str, Any], heat_namespaces: Iterable[str]
) -> list[OptionInfo]:
    """Turn ``oslo-config-generator --format json`` output into options, Heat's winning ties.

    Heat re-exports some library options under its own namespace (``[database]`` comes from
    ``heat.common.config`` too); the generator then lists them twice.
    """
    heat = set(heat_namespaces)
    found: dict[tuple[str, str], OptionInfo] = {}
    for group, body in data.get("options", {}).items():
        for raw in body.get("opts", ()):
            opt = _option(str(group), raw, heat)
            if opt.key not in found or (opt.is_heat and not found[opt.key].is_heat):
                found[opt.key] = opt
    return sorted(found.values(), key=lambda o: (not o.is_heat, o.owner, o.group, o.name))


# -- namespaces and cache key ------------------------------------------------------------------


def _entry_point_names(entry_points_txt: Path, section: str = "oslo.config.opts") -> list[str]:
    names: list[str] = []
    current = ""
    with contextlib.suppress(OSError):
        for line in entry_points_txt.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip()
            elif current == section and "=" in line:
                names.append(line.split("=", 1)[0].strip())
    return names


def heat_dist_info(release: Release) -> Path:
    found = sorted(release.site_packages.glob("openstack_heat-*.dist-info"))
    if not found:
        raise EnvironmentProblem(f"no openstack_heat dist-info in {release.site_packages}",
                                 hint="is Heat installed in this venv?")
    return found[-1]


def discover_namespaces(release: Release) -> tuple[list[str], list[str], list[str]]:
    """(Heat's namespaces, library namespaces present, library namespaces missing)."""
    heat = sorted(n for n in _entry_point_names(heat_dist_info(release) / "entry_points.txt")
                  if n.startswith(HEAT_NAMESPACE_PREFIX))
    if not heat:
        raise EnvironmentProblem(f"{release.label}: Heat declares no oslo.config.opts namespace")
    available: set[str] = set()
    for eps in release.site_packages.glob("*.dist-info/entry_points.txt"):
        available.update(_entry_point_names(eps))
    present = [n for n in LIBRARY_NAMESPACES if n in available]
    missing = [n for n in LIBRARY_NAMESPACES if n not in available]
    return heat, present, missing


def _editable_source(dist_info: Path) -> Path | None:
    try:
        data = json.loads((dist_info / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = str(data.get("url", ""))
    if data.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return Path(url[len("file://"):])
    return None


def cache_key(release: Release) -> str:
    """A hash of what decides the options: every installed distribution and Heat's files."""
    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for dist in sorted(p.name for p in release.site_packages.glob("*.dist-info")):
        digest.update(dist.encode())
    heat = heat_dist_info(release)
    for name in ("RECORD", "entry_points.txt"):
        with contextlib.suppress(OSError):
            digest.update((heat / name).read_bytes())
    source = _editable_source(heat)
    if source is not None:
        # An editable Heat keeps the same RECORD while its code changes under review.
        for path in sorted(source.glob("heat/**/*.py")):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()


# -- the cached inventory ----------------------------------------------------------------------


def cache_path(release: Release) -> Path:
    return release.venv / CACHE_FILE


def _read_cache(path: Path, key: str) -> Inventory | None:
    # Tolerant, as pytest's stepwise cache: a corrupt or stale cache is just a miss.
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") == key and data.get("format") == CACHE_FORMAT:
            return Inventory.from_dict(data["inventory"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON so that a concurrent reader sees the old file or the new one, never half."""
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def probed(release: Release, script: Path, what: str, cache: tuple[str, str], *,
           log: Path | None = None, pick: Callable[[Any], dict[str, Any]] = dict,
           fresh: Callable[[dict[str, Any]], bool] = lambda data: True) -> dict[str, Any]:
    """What ``script`` prints (its ``pick``ed part) when run with the release's python, kept
    in the venv as ``cache`` (file name, field) under :func:`cache_key`: a venv whose packages
    did not change is never probed twice. A corrupt or stale (not ``fresh``) cache is a miss."""
    file, field = cache
    key, path = cache_key(release), release.venv / file
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key and fresh(cached[field]):
            return dict(cached[field])
    outcome = run(ExecuteRequest([str(release.python), str(script)], timeout=PROBE_TIMEOUT,
                                 log=log, env={"PYTHONWARNINGS": "ignore"}))
    outcome.assert_success(f"{what} of {release.label}")
    try:
        data = pick(json.loads(outcome.out))
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvironmentProblem(f"{what} of {release.label} printed no JSON",
                                 hint=f"log: {log}" if log else "") from exc
    with contextlib.suppress(OSError):  # a read-only venv is just not cached
        write_json_atomic(path, {"key": key, field: data})
    return data


def _generate(release: Release, heat: list[str], libs: list[str], log: Path | None) -> Any:
    cmd: list[str] = [str(release.bin("oslo-config-generator")), "--format", "json"]
    for namespace in (*heat, *libs):
        cmd += ["--namespace", namespace]
    outcome = run(ExecuteRequest(cmd, timeout=GENERATOR_TIMEOUT, log=log,
                                 env={"PYTHONWARNINGS": "ignore"}))
    outcome.assert_success(f"oslo-config-generator of {release.label}")
    try:
        return json.loads(outcome.out)
    except ValueError as exc:
        raise EnvironmentProblem(f"oslo-config-generator of {release.label} printed no JSON",
                                 hint=f"first output: {outcome.out[:120]!r}") from exc


_LOADED: dict[tuple[Path, str], Inventory] = {}


def load_inventory(
    release: Release, *, refresh: bool = False, log: Path | None = None
) -> Inventory:
    """The release's options: from the cache in its venv, else from its generator (then cached).

    Kept in memory too: a run asks for the same two inventories from several checks and the
    impact report.
    """
    key = cache_key(release)
    path = cache_path(release)
    if not refresh:
        cached = _LOADED.get((path, key)) or _read_cache(path, key)
        if cached is not None:
            _LOADED[(path, key)] = cached
            return cached
    heat, libs, missing = discover_namespaces(release)
    data = _generate(release, heat, libs, log)
    inventory = Inventory(release.label, tuple(options_from_generator(data, heat)),
                          tuple(heat), tuple(libs), tuple(missing))
    # A read-only venv still gets its inventory; it is just not cached.
    with contextlib.suppress(OSError):
        write_json_atomic(path, {"key": key, "format": CACHE_FORMAT,
                                 "inventory": inventory.to_dict()})
    _LOADED[(path, key)] = inventory
    return inventory
