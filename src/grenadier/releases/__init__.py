"""Release spec -> cached virtualenv -> binaries and version facts of that release."""

from __future__ import annotations

from grenadier.releases.cache import ReleaseCache, default_cache_dir
from grenadier.releases.release import Release
from grenadier.releases.spec import ReleaseSpec, parse_spec

__all__ = ["Release", "ReleaseCache", "ReleaseSpec", "default_cache_dir", "parse_spec"]
