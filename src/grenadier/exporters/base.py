"""What every exporter shares: the settings, the files it returns, the templates.

Each exporter renders templates shipped as package data (``templates/<kind>/``) into files
under a project directory. Placeholders are ``@@name@@``: shell and CI files use ``$x``,
``{{ x }}`` and ``${{ x }}`` themselves, so none of those can be the template syntax.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from grenadier.errors import UsageError
from grenadier.matrix.paths import UpgradePath

#: N-1 -> N twice, and the supported skip-level (SLURP) upgrade: 2025.1 -> 2026.1 (Heat 24 -> 26)
DEFAULT_PATHS = ("25.0.2:26.0.2", "26.0.2:27.0.1", "24.1.1:26.0.2")
#: ``--under-review``: the project checkout (the change under test) as the target
UNDER_REVIEW = ("latest:.", "latest-1:.")
DEFAULT_INSTALL = "grenadier"
_PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")


@dataclass
class ExportSettings:
    """What every exporter needs: the paths to test and how to install grenadier."""

    paths: Sequence[UpgradePath] = field(default_factory=list)
    #: a pip requirement: "grenadier", "grenadier==0.1.0", "git+https://.../grenadier@main"
    install: str = DEFAULT_INSTALL
    #: runs at once (None: the CI's own default)
    jobs: int | None = None
    python: str = "3.11"
    #: ``grenadier matrix --constraints`` on the CI node (a file there, as written)
    constraints: str = "auto"

    def path_args(self, kind: str) -> list[str]:
        """Each path as ``BASE:TARGET:DB``, the form ``grenadier matrix --path`` takes."""
        check_plain(self.paths, kind)
        return [f"{p.base}:{p.target}:{p.db}" for p in self.paths]


def check_plain(paths: Sequence[UpgradePath], kind: str) -> None:
    """An export carries each path as BASE:TARGET:DB only: refuse what it would drop."""
    for path in paths:
        if path.args:
            raise UsageError(f"export {kind}: path {path.label} has run options "
                             f"({' '.join(path.args)}) that the export cannot carry",
                             hint="remove its args (and the file's) from the TOML file")
        if path.name:
            raise UsageError(f"export {kind}: path {path.name!r} has a name, which the "
                             "export cannot carry",
                             hint="remove the name from the TOML file")


@dataclass(frozen=True)
class ExportFile:
    path: str  # relative to the export directory
    text: str
    executable: bool = False


Exporter = Callable[[ExportSettings], list[ExportFile]]


def template(name: str) -> str:
    """The text of ``templates/<name>`` (package data)."""
    return (resources.files("grenadier.exporters") / "templates" / name).read_text(
        encoding="utf-8")


def render(name: str, values: Mapping[str, str]) -> str:
    """Fill ``@@key@@`` placeholders; an unknown or unused key is a bug in the exporter."""
    text = template(name)
    used = set(_PLACEHOLDER.findall(text))
    missing = used - set(values)
    unused = set(values) - used
    if missing or unused:
        raise ValueError(f"template {name}: missing {sorted(missing)}, unused {sorted(unused)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def yaml_list(items: Sequence[str], indent: int) -> str:
    """A YAML block list; JSON strings are valid YAML double-quoted scalars."""
    pad = " " * indent
    return "\n".join(f"{pad}- {json.dumps(item)}" for item in items)


def write(directory: Path, files: Sequence[ExportFile], *, force: bool = False) -> list[Path]:
    """Write ``files`` under ``directory``; refuse to overwrite unless ``force``."""
    targets = [(directory / f.path, f) for f in files]
    existing = [str(path) for path, _ in targets if path.exists()]
    if existing and not force:
        raise UsageError(f"would overwrite {', '.join(existing)}",
                         hint="use --force to replace them")
    written = []
    try:
        for path, spec in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(spec.text, encoding="utf-8")
            path.chmod(0o755 if spec.executable else 0o644)
            written.append(path)
    except OSError as exc:
        raise UsageError(f"cannot write into {directory}: {exc.strerror}",
                         hint="choose a writable directory") from exc
    return written
