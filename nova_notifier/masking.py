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


NORMAL, SECRET, FILE_LIST = 0, 1, 2


@functools.lru_cache(maxsize=8192)
def key_kind(name: str) -> int:
    """How a mapping key's value is treated: ``SECRET`` (masked whole),
    ``FILE_LIST`` (injected files: paths kept, contents masked) or
    ``NORMAL``."""
    if is_secret_key(name):
        return SECRET
    return FILE_LIST if squashed(name) in FILE_LIST_KEYS else NORMAL


# Values: a quoted string (at most 4096 characters), or a bare word.
_QUOTED = r"""(?:"(?:[^"\\\n]|\\.){0,4096}"|'(?:[^'\\\n]|\\.){0,4096}')"""
_ESCAPED_QUOTED = r'(?:\\"(?:[^"\\\n]|\\[^"\n]){0,4096}\\")'
_BARE = r"""[^\s,;&'"<>(){}\[\]]+"""
_VALUE = re.compile(rf"{_ESCAPED_QUOTED}|{_QUOTED}|{_BARE}")
_CLI_VALUE = re.compile(rf"{_QUOTED}|(?!-)[^\s'\"]+")
_LINE_VALUE = re.compile(r"[^\s\"'][^\r\n]*")
# The rules match a name and its separator only; the value is read after,
# and only when the name is a secret's. Every name must start where a word
# starts (the lookbehinds) and is at most 64 characters long, so a scan
# costs time in proportion to the text, whatever the text is.
_TEXT_RULES = re.compile(
    # scheme://user:PASSWORD@host (the password is read right here)
    r"(?P<url>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s:/@]{0,256}:)"
    r"(?=(?P<url_pw>[^\s/@]{1,512})@)"
    # "key": "value", 'key' = 'value', \"key\": \"value\"
    r"|(?P<q>\\?[\"'])(?P<qname>[A-Za-z_][\w.\-]{0,63})(?P=q)\s{0,8}[:=]\s{0,8}"
    # Authorization: Bearer abc, Cookie: a=b; c=d (to the end of the line)
    r"|(?<![\w.\-])(?P<hname>(?i:(?:proxy[-_]?)?authorization|(?:set[-_]?)?cookie))"
    r"[ \t]{0,8}:[ \t]{0,8}"
    # --key value, --key=value
    r"|(?<![\w\-])--(?P<cname>[A-Za-z][\w\-]{0,63})(?:[ \t]{1,8}|=)"
    # key=value, key: value (also ?key=value&...)
    r"|(?<![\w.\-])(?P<aname>[A-Za-z_][\w.\-]{0,63})[ \t]{0,8}[=:][ \t]{0,8}"
)


def _masked_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[-1]
    if value.startswith('\\"'):
        return '\\"' + MASK + '\\"'
    return MASK


def _secret_value(text: str, match: re.Match[str]) -> tuple[int, str] | None:
    """Where the secret value after ``match`` ends and what replaces it;
    None when the name is harmless or no value follows."""
    end = match.end()
    if match.group("url") is not None:
        return match.end("url_pw"), MASK
    if match.group("hname") is not None:
        value = _LINE_VALUE.match(text, end)
        return None if value is None else (value.end(), MASK)
    name = match.group("qname") or match.group("aname")
    pattern = _VALUE
    if name is None:
        name, pattern = match.group("cname"), _CLI_VALUE
    if not is_secret_key(name):
        return None
    value = pattern.match(text, end)
    if value is None:
        return None
    return value.end(), _masked_value(value.group(0))


def _mask(text: str) -> str:
    pieces: list[str] = []
    pos = 0
    search = _TEXT_RULES.search
    while (match := search(text, pos)) is not None:
        found = _secret_value(text, match)
        pieces.append(text[pos : match.end()])
        if found is None:
            pos = match.end()
        else:
            pos, replacement = found
            pieces.append(replacement)
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
    # Cheap first look: without one of these no rule can fire.
    if "=" not in text and ":" not in text and "--" not in text:
        return text
    if len(text) <= _CACHED_LENGTH:
        return _mask_short(text)
    return _mask(text)
