"""Allow ``python -m grenadier``."""

from __future__ import annotations

from grenadier.cli.main import main

raise SystemExit(main())
