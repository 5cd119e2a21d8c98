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
        "keystorepass",
        "vncpass",
        "tempurlsig",
        "xamzsignature",
        "xamzcredential",
        "sig",
    }
)
# A name whose last word is one of these is a secret (db_password, my_token).
_SECRET_LAST_WORDS = frozenset(
    {
        "password",
        "passwd",
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

# dbPassword, DBPassword, MySQLPassword -> db/my sql + password
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_CONFIRMATIONS = frozenset({"confirmation", "confirm", "again", "repeat"})
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase"})


@functools.lru_cache(maxsize=8192)
def _words(name: str) -> tuple[str, ...]:
    """Lower-case words of a name; a number ending a word is dropped
    (``password2`` and ``token1`` are a password and a token)."""
    words = [w for w in _SEPARATORS.split(_CAMEL.sub("_", name).lower()) if w]
    return tuple(w.rstrip("0123456789") or w for w in words)


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
    last = words[-1]
    if "".join(words) in _EXACT or last in _SECRET_LAST_WORDS:
        return True
    if len(words) < 2:
        return False
    if last == "key":
        return words[-2] in _KEY_QUALIFIERS
    # password_confirmation, confirm_password
    return last in _CONFIRMATIONS and not _PASSWORD_WORDS.isdisjoint(words)


NORMAL, SECRET, FILE_LIST = 0, 1, 2


@functools.lru_cache(maxsize=8192)
def key_kind(name: str) -> int:
    """How a mapping key's value is treated: ``SECRET`` (masked whole),
    ``FILE_LIST`` (injected files: paths kept, contents masked) or
    ``NORMAL``."""
    if is_secret_key(name):
        return SECRET
    return FILE_LIST if squashed(name) in FILE_LIST_KEYS else NORMAL


# Values of secret names. A quoted value may carry a Python prefix (b'x',
# u"x"); a value opening a bracket is masked to the bracket that closes it.
_QUOTED = r"""(?:[bBuUrR]{0,2}"(?:[^"\\\n]|\\.)*"|[bBuUrR]{0,2}'(?:[^'\\\n]|\\.)*')"""
_ESCAPED_QUOTED = r'(?:\\"(?:[^"\\\n]|\\[^"\n])*\\")'
_BARE = r"""[^\s,;&'"<>(){}\[\]]+"""
_VALUE = re.compile(rf"{_ESCAPED_QUOTED}|{_QUOTED}|{_BARE}")
_CLI_VALUE = re.compile(rf"{_QUOTED}|(?!-)[^\s'\"]+")
_CLI_ASSIGNED = re.compile(rf"{_QUOTED}|[^\s'\"]+")
# A header value: to the end of the line or the quote that closes it.
_LINE_VALUE = re.compile(r"""[^\s"'][^\r\n"']*""")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}-----")
# A value in prose ("could not validate token: invalid signature") is only
# taken for a credential when it looks like one.
_CREDENTIAL_LIKE = re.compile(r"(?=[^\s]*\d)[^\s]{8,}|[^\s]{20,}")
# The rules match a name and its separator only; the value is read after,
# and only when the name is a secret's. Every name must start where a word
# starts (the lookbehinds) and is at most 64 characters long, and a masked
# value is never read again, so a scan costs time in proportion to the text,
# whatever the text is.
# The names are read possessively ({n,m}+): what follows a name (a quote,
# "://", a blank, "=" or ":") is never part of one, so giving characters
# back could not make a rule match; it only cost time.
_RULES = (
    # scheme://user:PASSWORD@host[,user:PASSWORD@host...]
    r"(?P<url>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}+://)"
    # a PEM private key, whatever names it
    r"|(?P<pem>-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----)"
    # "key": "value", 'key' = 'value', \"key\": \"value\"
    r"|(?P<q>\\?[\"'])(?P<qname>[A-Za-z_][\w.\-]{0,63}+)(?P=q)\s{0,8}[:=]\s{0,8}"
    # Authorization: Bearer abc, Cookie: a=b; c=d (to the end of the value)
    r"|(?<![\w.\-])(?P<hname>(?i:(?:proxy[-_]?)?authorization|(?:set[-_]?)?cookie))"
    r"[ \t]{0,8}[:=][ \t]{0,8}"
    # --key value, --key=value
    r"|(?<![\w\-])--(?P<cname>[A-Za-z][\w\-]{0,63}+)(?P<csep>[ \t]{1,8}|=)"
    # key=value, key: value (also ?key=value&...)
    r"|(?<![\w.\-])(?P<aname>[A-Za-z_][\w.\-]{0,63}+)[ \t]{0,8}(?P<asep>[=:])[ \t]{0,8}"
)
# What every match starts with, tested before the six rules are tried at
# a position (most of the cost of a scan): a quote or backslash (quoted
# names), "--" (options, PEM keys), or a letter or "_" that no letter, digit,
# "." or "-" precedes (URLs, header names and assigned names: all three
# lookbehinds exclude those). U+017F, the long s, is an "s" to the
# case-blind header names.
_TEXT_RULES = re.compile(
    r"(?=(?<![A-Za-z0-9.\-])[A-Za-z_\u017f]|[\\\"']|--)(?:" + _RULES + ")"
)
# Where a "name: value" is a field, not prose: at the start of the text or a
# line, or after an opening bracket, a comma, a semicolon or a quote.
_FIELD_START = frozenset("\n\r{[(,;\"'")
_OPENING = {"[": "]", "{": "}", "(": ")"}


def _masked_value(value: str) -> str:
    quote = value.lstrip("bBuUrR")
    if len(quote) >= 2 and quote[0] == quote[-1] and quote[0] in "\"'":
        return value[: len(value) - len(quote) + 1] + MASK + quote[-1]
    if value.startswith('\\"'):
        return '\\"' + MASK + '\\"'
    return MASK


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _bracket_end(text: str, pos: int) -> int:
    """Where the bracket opening at ``pos`` closes (quotes respected); the
    end of the line when it does not close on it."""
    stack = [_OPENING[text[pos]]]
    quote = ""
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in _OPENING:
            stack.append(_OPENING[ch])
        elif ch == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        elif ch == "\n":
            return i
        i += 1
    return n


def _pem_end(text: str, pos: int) -> int:
    end = _PEM_END.search(text, pos)
    return len(text) if end is None else end.start()


# Where a URL's authority cannot reach: a blank (\s is str.isspace()), a
# quote or an angle bracket.
_AUTHORITY_STOP = re.compile(r"[\s\"'<>]")


def _url_secrets(text: str, start: int) -> tuple[int, str] | None:
    """The userinfo passwords of the URL whose authority starts at ``start``:
    where the authority ends and its masked text, or None when it has none.

    The authority runs to the first ``/``, ``?`` or ``#`` after its last
    ``@`` (a password may hold ``/`` or ``@``); several hosts may be listed
    with commas (``amqp://u:p1@h1,u:p2@h2/``).
    """
    n = min(len(text), start + 4096)
    stop = _AUTHORITY_STOP.search(text, start, n)
    limit = n if stop is None else stop.start()
    at = text.rfind("@", start, limit)
    if at < 0:
        return None
    end = at
    while end < limit and text[end] not in "/?#":
        end += 1
    masked = []
    changed = False
    for entry in text[start:end].split(","):
        userinfo, sep, host = entry.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if (
            sep
            and colon
            and password
            and "/" not in user
            and "@" not in user
            and not (password.isdigit() or _PORT_THEN_PATH.match(password))
        ):
            masked.append(f"{user}:{MASK}@{host}")
            changed = True
        else:
            masked.append(entry)
    return (end, ",".join(masked)) if changed else None


_PORT_THEN_PATH = re.compile(r"\d{1,5}/")


def _secret_value(text: str, match: re.Match[str]) -> tuple[int, str] | None:
    """Where the secret value after ``match`` ends and what replaces it;
    None when the name is harmless or no value follows."""
    end = match.end()
    if match.group("url") is not None:
        return _url_secrets(text, end)
    if match.group("pem") is not None:
        return _pem_end(text, end), MASK
    if match.group("hname") is not None:
        value = _LINE_VALUE.match(text, end)
        return None if value is None else (value.end(), MASK)
    name = match.group("qname") or match.group("aname")
    pattern = _VALUE
    if name is None:
        name = match.group("cname")
        pattern = _CLI_ASSIGNED if match.group("csep") == "=" else _CLI_VALUE
    if not is_secret_key(name):
        return None
    if end >= len(text):
        return None
    first = text[end]
    if text.startswith("-----BEGIN", end):
        return _pem_end(text, end), MASK
    if first in _OPENING:
        return _bracket_end(text, end), MASK
    value = pattern.match(text, end)
    if value is None or (
        first in "\"'" and not value.group(0).endswith(first)
    ):  # a quote that does not close: mask to the end of the line
        return (_line_end(text, end), MASK) if first in "\"'" else None
    if match.group("asep") == ":" and not _at_field_start(text, match.start()):
        if not _CREDENTIAL_LIKE.fullmatch(value.group(0)):
            return None
    return value.end(), _masked_value(value.group(0))


def _at_field_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] in _FIELD_START


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
        return text  # no assignment, no URL, no PEM block
    if len(text) <= _CACHED_LENGTH:
        return _mask_short(text)
    return _mask(text)
