"""What a shown value hides: URL passwords, password-like query parameters, secret options."""

from __future__ import annotations

import pytest

from grenadier.masking import looks_secret, mask_setting, mask_text, mask_url


@pytest.mark.parametrize(("url", "shown"), [
    ("mysql+pymysql://heat:s3cret@127.0.0.1:3306/heat?charset=utf8",
     "mysql+pymysql://heat:***@127.0.0.1:3306/heat?charset=utf8"),
    ("rabbit://u:p@ss@h:5672/", "rabbit://u:***@h:5672/"),
    ("postgresql://heat@db/heat?password=s3cret&sslmode=require",
     "postgresql://heat@db/heat?password=***&sslmode=require"),
    ("mysql://db/heat?user=heat&db_passwd=s3cret", "mysql://db/heat?user=heat&db_passwd=***"),
    ("postgresql://heat:pw@/heat?host=/run/pg&PASSWORD=again",
     "postgresql://heat:***@/heat?host=/run/pg&PASSWORD=***"),
])
def test_url_credentials_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize("url", ["postgresql://heat@db/heat?sslmode=require",
                                 "sqlite:////var/lib/heat/heat.sqlite", "fake://"])
def test_a_url_without_credentials_is_left_as_it_is(url: str) -> None:
    assert mask_url(url) == url


def test_a_url_urllib_cannot_parse_is_still_masked() -> None:
    # urllib refuses the port ("se"): the password must be hidden all the same
    assert "cret" not in mask_url("rabbit://u:se/cret@h:5672/")
    assert "s3cret" not in mask_url("postgresql://u:s3cret@h:notaport/heat")


def test_every_url_in_free_text_is_masked() -> None:
    text = ("db_sync failed: cannot reach mysql://heat:one@db/heat, then "
            "rabbit://guest:two@bus:5672/ and http://k/v3?token=three; debug = true")
    shown = mask_text(text)
    assert all(secret not in shown for secret in ("one", "two", "three")), shown
    assert shown.endswith("debug = true")
    assert mask_text("nothing to hide: a = b") == "nothing to hide: a = b"


@pytest.mark.parametrize(("name", "secret"), [
    ("rabbit_password", True), ("memcache_secret_key", True), ("admin_token", True),
    ("debug", False), ("log_dir", False), ("endpoint_type", False)])
def test_secret_names(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_a_setting_is_masked_by_its_declaration_first_then_by_its_name() -> None:
    assert mask_setting("auth_encryption_key", "0123", secret=True) == "***"
    # a release declares the option not secret: its name does not decide
    assert mask_setting("token_cache_time", "300", secret=False) == "300"
    # no release knows the option: its name decides
    assert mask_setting("rabbit_password", "s3cret", secret=None) == "***"
    assert mask_setting("rabbit_host", "bus", secret=None) == "bus"
    assert mask_setting("connection", "mysql://h:s3cret@db/heat", secret=False) == \
        "mysql://h:***@db/heat"
