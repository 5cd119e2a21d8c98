"""What counts as a secret, and how one is masked: one home for both rules.

Secrets are recognised in two ways, and only these two:

* **by key name**: a mapping key, a ``notify_decorator`` parameter name, an
  HTTP header name, is a secret's name (:func:`is_secret_key`): ``password``,
  ``X-Auth-Token``, ``adminPass``, ``aws_secret_access_key`` and so on;
* **inside free text**, only where the text assigns a value to such a name
  (:func:`mask_text`): ``password=s3cret``, ``token: abc``,
  ``"password": "x"``, ``--os-password x``, ``Authorization: Bearer abc``,
  the password of a URL's userinfo (``mysql://nova:PASSWORD@db``) and URL
  query parameters (``?token=abc``).

A word such as *token*, *secret*, *password*, *key* or *auth* inside a name
(``my-token-server``, ``db-password-rotator``, ``keystone-auth-proxy``) is
not an assignment and is never touched: unlike oslo.utils'
``mask_password``, these rules never alter a harmless value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

MASK = "***"

# Whole names (lower case, separators removed) that are secrets.
_EXACT = frozenset(
    {
        # oslo.utils' list
        "adminpass",
        "password",
        "authtoken",
        "newpass",
        "authpassword",
        "secretuuid",
        "secret",
        "syspswd",
        "token",
        "configdrive",
        "chappassword",
        "encryptedkey",
        "privatekey",
        "fernetkey",
        "sslkey",
        "passphrase",
        "cephclusterfsid",
        "octaviaheartbeatkey",
        "rabbitcookie",
        "cephmanilaclientkey",
        "pacemakerremoteauthkey",
        "designaterndckey",
        "cephadminkey",
        "heatauthencryptionkey",
        "cephclientkey",
        "keystonecredential",
        "barbicansimplecryptokek",
        "cephrgwkey",
        "swifthashsuffix",
        "migrationsshkey",
        "cephmdskey",
        "cephmonkey",
        "chapsecret",
        # and past it
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "xauthtoken",
        "xsubjecttoken",
        "xservicetoken",
        "xauthkey",
        "xstorageauth",
        "apikey",
        "credential",
        "credentials",
        "userdata",
        "passwd",
        "pwd",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "clientsecret",
        "connectionpassword",
    }
)
# A name whose last word is one of these is a secret (db_password, my_token).
_SECRET_LAST_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pswd",
        "passphrase",
        "token",
        "secret",
        "credential",
        "credentials",
        "cookie",
        "authorization",
    }
)
# "<qualifier>_key" is a secret (aws_secret_access_key); key_name, ssh_key,
# public_key are not.
_KEY_QUALIFIERS = frozenset(
    {
        "private",
        "secret",
        "access",
        "api",
        "encryption",
        "encrypted",
        "fernet",
        "ssl",
        "tls",
        "signing",
        "auth",
        "master",
        "shared",
        "hmac",
        "cephx",
        "client",
        "session",
    }
)
# Names whose value is a list of files: the contents are masked, not the paths.
FILE_LIST_KEYS = frozenset({"injectedfiles", "personality"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=8192)
def _words(name: str) -> tuple[str, ...]:
    return tuple(w for w in _SEPARATORS.split(_CAMEL.sub("_", name).lower()) if w)


def squashed(name: str) -> str:
    """``name`` in lower case with every separator removed (``X-Auth-Token``
    -> ``xauthtoken``), the form the key lists use."""
    return "".join(_words(name))


@functools.lru_cache(maxsize=8192)
def is_secret_key(name: str) -> bool:
    """True when ``name`` (a key, parameter or header name) names a secret.

    The whole name is a known secret name (``password``, ``adminPass``,
    ``X-Subject-Token``, ``user_data``...), or its last word is one
    (``db_password``, ``service-token``, ``client_secret``), or it ends in
    ``<qualifier>_key`` (``private_key``, ``aws_secret_access_key``). Names
    that merely contain such a word elsewhere (``token_expiry``,
    ``key_name``, ``password_rotator``) are not secrets.
    """
    if not isinstance(name, str):
        return False
    words = _words(name)
    if not words:
        return False
    if "".join(words) in _EXACT or words[-1] in _SECRET_LAST_WORDS:
        return True
    return len(words) > 1 and words[-1] == "key" and words[-2] in _KEY_QUALIFIERS


_QUOTED = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
_ESCAPED_QUOTED = r'(?:\\"(?:[^"\\\n]|\\[^"\n])*\\")'
_BARE = r"""[^\s,;&'"<>(){}\[\]]+"""
# Each rule matches a name and its separator; the value that follows is only
# looked at (a lookahead), so that when the name is harmless the scan goes
# on right after it and a secret later in the value is still found
# ("http://api/x?token=..." is the harmless name "http", then "token").
_TEXT_RULES = re.compile(
    # scheme://user:PASSWORD@host
    r"(?P<url>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?=(?P<url_pw>[^\s/@]+)@)"
    # "key": "value", 'key' = 'value', \"key\": \"value\"
    r"|(?P<q>\\?[\"'])(?P<qname>[A-Za-z_][\w.\-]{0,63})(?P=q)\s*[:=]\s*"
    rf"(?=(?P<qv>{_ESCAPED_QUOTED}|{_QUOTED}|{_BARE}))"
    # Authorization: Bearer abc, Cookie: a=b; c=d (to the end of the line)
    r"|(?<![\w.\-])(?P<hname>(?i:(?:proxy[-_]?)?authorization|(?:set[-_]?)?cookie))"
    r"[ \t]*:[ \t]*(?=(?P<hv>[^\s\"'][^\r\n]*))"
    # --key value, --key=value
    r"|(?<![\w\-])--(?P<cname>[A-Za-z][\w\-]{0,63})(?:[ \t]+|=)"
    rf"(?=(?P<cv>{_QUOTED}|(?!-)[^\s'\"]+))"
    # key=value, key: value (also ?key=value&...)
    r"|(?<![\w.\-])(?P<aname>[A-Za-z_][\w.\-]{0,63})[ \t]*[=:][ \t]*"
    rf"(?=(?P<av>{_QUOTED}|{_BARE}))"
)
# Cheap first look: without one of these no rule can fire.
_MAYBE = re.compile(r"[=:]|--")


def _masked_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[-1]
    if value.startswith('\\"'):
        return '\\"' + MASK + '\\"'
    return MASK


def _secret_value(match: re.Match[str]) -> str | None:
    """The value group of a rule that fired on a secret, else None."""
    if match.group("url") is not None:
        return "url_pw"
    if match.group("hname") is not None:
        return "hv"
    for name_group, value_group in (("qname", "qv"), ("cname", "cv"), ("aname", "av")):
        name = match.group(name_group)
        if name is not None:
            return value_group if is_secret_key(name) else None
    return None


def _mask(text: str) -> str:
    pieces: list[str] = []
    pos = 0
    search = _TEXT_RULES.search
    while (match := search(text, pos)) is not None:
        value_group = _secret_value(match)
        if value_group is None:
            continue_at = match.end()
            pieces.append(text[pos:continue_at])
        else:
            value = match.group(value_group)
            masked = MASK if value_group in ("url_pw", "hv") else _masked_value(value)
            pieces.append(text[pos : match.end()])
            pieces.append(masked)
            continue_at = match.end(value_group)
        pos = continue_at
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


_CACHED_LENGTH = 256
_mask_short: Callable[[str], str] = functools.lru_cache(maxsize=16384)(_mask)


def mask_text(text: str) -> str:
    """``text`` with the secrets it assigns replaced by ``***``.

    Only assignment-like forms are masked (see the module's docstring);
    everything else in ``text`` comes back unchanged, byte for byte.
    """
    if not _MAYBE.search(text):
        return text
    if len(text) <= _CACHED_LENGTH:
        return _mask_short(text)
    return _mask(text)
