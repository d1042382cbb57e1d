"""heat.conf parameters with every value filled in, and a reader for the rendered file."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from grenadier.plugins.heat import conf


def heat_conf_params(tmp_path: Path, **overrides: Any) -> conf.HeatConfParams:
    values: dict[str, Any] = {
        "host": "grenadier-engine", "port": 18004,
        "db_url": "postgresql+psycopg2://postgres@/heat?host=/tmp/pg",
        "log_file": tmp_path / "heat.log", "api_paste_config": tmp_path / "api-paste.ini",
        "token_file": tmp_path / "token.json", "auth_encryption_key": "k" * 32, **overrides}
    return conf.HeatConfParams(**values)


def parse_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser
