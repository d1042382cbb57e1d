"""What a shown value must hide: URL credentials, password-like query parameters, secret options.

A leaf module (it imports nothing of grenadier): the services, the checks, the options and the
reports all mask with the same rules, so that a password a user gave or grenadier generated
never reaches a report, a JUnit file or the console.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
#: words that make a name (an option, a query parameter) hold a secret
SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "passphrase", "credential")

_WORDS = "|".join(SECRET_WORDS)
#: ``scheme://user:password@``: everything between the user's colon and the last ``@`` before
#: a blank (a password may hold an ``@``, or an unencoded ``/`` that urllib misreads)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)\S*@")
#: ``?password=...`` / ``&db_password=...`` (also after ``;``, as some drivers write them)
_QUERY = re.compile(rf"(?P<head>[?&;][^=&;\s#]*(?:{_WORDS})[^=&;\s#]*=)[^&;\s#]*", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether an option or parameter called ``name`` holds a secret by its name alone
    (``rabbit_password``, ``memcache_secret_key``, ``admin_token``)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_text(text: str) -> str:
    """``text`` with the password of every URL in it, and every password-like query
    parameter's value, replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    return _QUERY.sub(rf"\g<head>{MASK}", _USERINFO.sub(rf"\g<head>{MASK}@", text))


def mask_url(url: str) -> str:
    """``url`` with its password and its password-like query parameters masked.

    A URL that urllib cannot take apart (e.g. a bad port) is masked as free text: the
    password is hidden either way.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return mask_text(url)
    if password is None:
        return mask_text(url)  # rebuilt, sqlite:////path or fake:// would change
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return mask_text(urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}")))


def mask_setting(name: str, value: str, *, secret: bool | None) -> str:
    """The value of a configuration setting as reports show it: wholly masked when the option
    is secret (``secret``: as a release declares it; None: no release knows the option, so
    its name decides), else with URL credentials masked."""
    hidden = looks_secret(name) if secret is None else secret
    return MASK if value and hidden else mask_text(value)
