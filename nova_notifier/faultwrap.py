"""``FaultWrapper``: a paste.deploy filter that turns exceptions into HTTP faults.

An exception escaping the wrapped application becomes a JSON fault response
shaped like Nova's, and an ``api.fault`` notification (when
``notify_on_api_faults`` is on); so does a 5xx response the application
returns. Successful requests pass straight through: no webob ``Request`` is
built for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import is_hop_by_hop

import webob
import webob.exc

from nova_notifier import lifecycle
from nova_notifier._log import get_logger
from nova_notifier.api_fault import enabled as api_fault_enabled
from nova_notifier.api_fault import send_api_fault
from nova_notifier.payload import fault_code, formatted_message
from nova_notifier.serializer import clean_text, mask_text

LOG = get_logger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
DEFAULT_FAULT_NAME = "computeFault"


def _error_classes() -> dict[int, type[webob.exc.HTTPError]]:
    """webob's HTTPError classes by status code, the most specific class winning."""
    found: dict[int, type[webob.exc.HTTPError]] = {}
    pending: list[type[webob.exc.HTTPError]] = [webob.exc.HTTPError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        code = getattr(cls, "code", None)
        if isinstance(code, int) and code >= 400 and cls.__module__ == "webob.exc":
            if code not in found or issubclass(cls, found[code]):
                found[code] = cls
    return found


_ERROR_CLASSES = _error_classes()


_NOT_COPIED = {"content-type", "content-length"}
# RFC 9110 field names are tokens; values are visible latin-1 text and blanks.
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def _valid_header(key: str, value: str) -> bool:
    return bool(_FIELD_NAME.fullmatch(key)) and bool(_FIELD_VALUE.fullmatch(value))


def _header_pairs(exc: BaseException) -> list[tuple[str, str]]:
    """An exception's ``headers`` as text pairs a fault response may carry.

    Hop-by-hop headers (which a WSGI app must not set), the body's own
    headers and anything that is not a valid HTTP field (an empty name,
    CR/LF, text outside latin-1) are left out; headers that cannot be read
    at all are ignored.
    """
    try:
        headers = getattr(exc, "headers", None)
        if not headers:
            return []
        items = headers.items() if hasattr(headers, "items") else headers
        pairs = [(str(key), str(value)) for key, value in items]
    except Exception:
        LOG.warning(
            "nova_notifier: ignoring unreadable fault headers of %s",
            type(exc).__name__,
        )
        return []
    kept = [
        (key, value)
        for key, value in pairs
        if key.lower() not in _NOT_COPIED
        and not is_hop_by_hop(key)
        and _valid_header(key, value)
    ]
    if len(kept) < len(pairs):
        LOG.debug("nova_notifier: fault headers not valid in HTTP were left out")
    return kept


def _fault_message(exc: BaseException, error_cls: type[webob.exc.HTTPError]) -> str:
    explanation = str(error_cls.explanation)
    try:
        if not getattr(exc, "safe", False):
            return explanation
        if callable(getattr(exc, "format_message", None)):
            message = formatted_message(exc)
            if message is None:  # a broken message must not break the fault
                return explanation
        else:
            message = clean_text(mask_text(str(exc)))
    except Exception:  # a "safe" attribute or str() that raises
        return explanation
    return f"{type(exc).__name__}: {message}"


def fault_response(exc: BaseException) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and JSON body of the fault for ``exc``.

    Status from the exception's ``code`` (unknown or missing: 500); its
    ``headers`` kept; body ``{"<faultName>": {"code", "message"}}`` with
    ``retryAfter`` for 413/429.
    """
    error_cls = _ERROR_CLASSES.get(fault_code(exc), webob.exc.HTTPInternalServerError)
    code = int(error_cls.code)
    headers = _header_pairs(exc)
    name = FAULT_NAMES.get(code, DEFAULT_FAULT_NAME)
    fault: dict[str, Any] = {"code": code, "message": _fault_message(exc, error_cls)}
    if code in (413, 429):
        retry = next((v for k, v in headers if k.lower() == "retry-after"), None)
        if retry:
            fault["retryAfter"] = retry
    body = json.dumps({name: fault}).encode("utf-8")
    headers += [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    return f"{code} {error_cls.title}", headers, body


# What webob's url_quote(..., PATH_SAFE) leaves as it is.
_UNQUOTED_PATH = re.compile(r"[A-Za-z0-9_.~/!$&'()*+,;=:@-]*")


def _plain_url(environ: dict[str, Any]) -> str | None:
    """``webob.Request(environ).url`` built directly, when the path needs no
    quoting and every part is text; None otherwise (webob builds it)."""
    scheme = environ.get("wsgi.url_scheme")
    script = environ.get("SCRIPT_NAME", "")
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    host = environ.get("HTTP_HOST")
    port: Any = None
    if host is None:
        host = environ.get("SERVER_NAME")
        port = environ.get("SERVER_PORT")
    elif type(host) is str and ":" in host and host[-1] != "]":
        host, port = host.rsplit(":", 1)
    if (
        type(scheme) is not str
        or type(host) is not str
        or type(script) is not str
        or type(path) is not str
        or (port is not None and type(port) is not str)
        or (query is not None and type(query) is not str)
        or not _UNQUOTED_PATH.fullmatch(script)
        or not _UNQUOTED_PATH.fullmatch(path)
    ):
        return None
    if (scheme == "https" and port == "443") or (scheme == "http" and port == "80"):
        port = None
    url = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    url = f"{url}{script}{path}"
    return f"{url}?{query}" if query else url


def _url(environ: dict[str, Any]) -> str:
    """The request's full URL (only built on the fault path), as webob gives it.

    PEP 3333 lets ``PATH_INFO`` (and more) be absent; what is missing is
    taken as empty rather than failing.
    """
    plain = _plain_url(environ)
    if plain is not None:
        return plain
    try:
        if "PATH_INFO" not in environ:
            environ = {**environ, "PATH_INFO": ""}
        return str(webob.Request(environ).url)
    except Exception:
        scheme = str(environ.get("wsgi.url_scheme") or "http")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""
        path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
        return f"{scheme}://{host}{path}"


class _Prepended:
    """An app's iterable with its first chunk already taken; keeps ``close()``."""

    def __init__(self, first: bytes, rest: Iterator[bytes], result: Any) -> None:
        self._first: list[bytes] = [first]
        self._rest = rest
        self._result = result

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


class _HeldResponse:
    """The ``start_response`` given to the app: keeps the status line until
    :meth:`commit` passes it on (a 5xx also sends ``api.fault`` then)."""

    __slots__ = (
        "wrapper",
        "environ",
        "start_response",
        "status",
        "headers",
        "committed",
        "real_write",
    )

    def __init__(
        self, wrapper: FaultWrapper, environ: dict[str, Any], start_response: Any
    ) -> None:
        self.wrapper = wrapper
        self.environ = environ
        self.start_response = start_response
        self.status: str | None = None
        self.headers: Any = None
        self.committed = False
        self.real_write: Callable[[bytes], Any] | None = None

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        if self.committed:
            # Output has begun: only the server can decide (PEP 3333).
            return self.start_response(status, headers, exc_info)
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: output begins now."""
        if self.real_write is None:
            self.real_write = self.commit()
        self.real_write(data)

    def commit(self) -> Any:
        self.committed = True
        status = self.status or "500 Internal Server Error"
        if status[:1] == "5":
            code = int(status[:3]) if status[:3].isdigit() else 500
            self.wrapper._notify(self.environ, code, f"HTTP {status}")
        return self.start_response(status, self.headers)


class FaultWrapper:
    """WSGI middleware: exceptions become Nova-style JSON faults plus ``api.fault``.

    ``FaultWrapper(app)`` wraps a WSGI application; ``FaultWrapper.factory``
    is the paste.deploy ``filter_factory`` (``use =
    egg:nova_notifier#faultwrap``). Sending the notification can never change
    or break the response.
    """

    def __init__(self, application: WSGIApp, **local_conf: Any) -> None:
        self.application = application

    @classmethod
    def factory(
        cls, global_conf: dict[str, Any], **local_conf: Any
    ) -> Callable[[WSGIApp], FaultWrapper]:
        """paste.deploy filter factory: returns a function that wraps an app."""

        def _filter(app: WSGIApp) -> FaultWrapper:
            return cls(app, **local_conf)

        return _filter

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        # The app's status line is held back until the app has returned and,
        # for a lazy iterable (a generator), yielded its first chunk: until
        # then nothing has reached the server, so an exception can still
        # become a fault, even when the app called start_response first.
        held = _HeldResponse(self, environ, start_response)
        result: Any = None
        first: list[bytes] | None = None
        try:
            result = self.application(environ, held)
            if type(result) not in (list, tuple):
                # Run it to its first chunk here, so an exception raised
                # before any output still becomes a fault.
                iterator = iter(result)
                try:
                    first = [next(iterator)]
                except StopIteration:
                    first = None
        except Exception as exc:
            if held.committed:
                # The status line has already gone out; nothing can be mended.
                raise
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    LOG.exception("nova_notifier: error closing the failed response")
            return self._fault(environ, start_response, exc)
        if held.status is not None and not held.committed:
            held.commit()
        if first is None:
            return result
        return _Prepended(first[0], iterator, result)

    def _fault(
        self, environ: dict[str, Any], start_response: StartResponse, exc: BaseException
    ) -> list[bytes]:
        try:
            status, headers, body = fault_response(exc)
        except Exception:  # the last resort: a plain 500 fault
            LOG.exception("nova_notifier: could not build the fault response")
            status, headers, body = fault_response(Exception())
        code = int(status[:3])
        if code >= 500:
            LOG.exception("Caught error: %s", type(exc).__name__)
        else:
            LOG.info("%s returned with HTTP %d", environ.get("PATH_INFO", ""), code)
        self._notify(environ, code, exc)
        start_response(status, headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [body]

    @staticmethod
    def _notify(environ: dict[str, Any], status: int, exc: BaseException | str) -> None:
        try:
            if lifecycle.is_initialized() and not api_fault_enabled():
                return  # spare building the URL
            send_api_fault(_url(environ), status, exc)
        except Exception:  # never let a notification touch the response
            LOG.exception("nova_notifier: api.fault could not be sent")
