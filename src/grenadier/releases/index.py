"""What the package index says about a release beyond its version: when it was uploaded.

The simple repository API in JSON (PEP 691) lists every file of a project with its upload time
(PEP 700). The index is the one the installer uses, as it reports it itself: grenadier names
none.
"""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from packaging.version import InvalidVersion, Version

from grenadier.errors import EnvironmentProblem

_JSON = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 60.0


def normalize(name: str) -> str:
    """A project name as the index spells it in URLs and file names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def upload_time(index_url: str, package: str, version: str) -> datetime:
    """When the first file of ``package`` ``version`` was uploaded to ``index_url``."""
    url = f"{index_url.rstrip('/')}/{normalize(package)}/"
    try:
        response = httpx.get(url, headers={"Accept": _JSON}, timeout=TIMEOUT,
                             follow_redirects=True)
        response.raise_for_status()
        files = response.json().get("files", [])
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise EnvironmentProblem(f"cannot read when {package} {version} was uploaded from the "
                                 f"package index: {exc.__class__.__name__}",
                                 hint="give --constraints SERIES, FILE or none") from exc
    times = [f.get("upload-time") for f in files
             if isinstance(f, dict) and _is_file_of(str(f.get("filename", "")), package, version)]
    found = sorted(t for t in times if isinstance(t, str))
    if not found:
        raise EnvironmentProblem(f"the package index gives no upload time for {package} "
                                 f"{version}", hint="give --constraints SERIES, FILE or none")
    return datetime.fromisoformat(found[0].replace("Z", "+00:00"))


def _is_file_of(filename: str, package: str, version: str) -> bool:
    """Whether ``filename`` (a wheel or an sdist) is of ``package`` at exactly ``version``."""
    if filename.endswith(".whl"):
        name, _, rest = filename.partition("-")
        found = rest.partition("-")[0]
    else:
        stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
        name, _, found = stem.rpartition("-")
    try:
        return normalize(name) == normalize(package) and Version(found) == Version(version)
    except InvalidVersion:
        return False
