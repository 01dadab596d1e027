"""How the package reads ``http://`` and ``https://`` package indexes.

The extension carries no TLS stack of its own: it calls :func:`fetch`, which
reads through Python's ``urllib``, so the proxies (``HTTPS_PROXY``,
``NO_PROXY``) and certificates (the system's store, ``SSL_CERT_FILE``)
Python is set up with apply here as to any other download. The limits are
the Rust core's: 10 s to connect or to wait for any one read, 60 s for the
whole request (headers included), at most 5 redirects (to http(s) only), and
no more than ``limit`` bytes.

Imported on the first ``http(s)://`` read only, so that importing the
package does not import ``urllib.request`` (and through it ``ssl``, ``email``
and ``http.client``).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from ._core import __version__

#: Seconds to connect, and to wait for any one read.
CONNECT_TIMEOUT = 10.0
#: Seconds for the whole request: connecting, the status and header lines
#: and the body (a server trickling any of them is cut off at it).
REQUEST_TIMEOUT = 60.0
#: Redirects followed before giving up.
MAX_REDIRECTS = 5

_CHUNK = 64 * 1024


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS
    max_repeats = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        # urllib follows a redirect to ftp:// too: only http(s) is.
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme
        if scheme.lower() not in ("http", "https"):
            raise OSError(f"redirected to {newurl!r}: only http(s) is followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """Shuts down every socket of one request when its overall deadline
    passes, so a read blocked in the status line, a header line or the body
    ends there (a socket timeout alone restarts with every byte)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shut(sock)
            self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown (an SSL socket's would drop its state
        # under the reading thread).
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _handlers(deadline: _Deadline) -> list[urllib.request.BaseHandler]:
    def watched(connection: http.client.HTTPConnection) -> None:
        # Every socket the connection makes (a proxy tunnel's included) is
        # cut off at the deadline from its first byte.
        make: Callable[..., socket.socket] = connection._create_connection  # type: ignore[attr-defined]

        def create(*args: Any, **kwargs: Any) -> socket.socket:
            sock = make(*args, **kwargs)
            deadline.watch(sock)
            return sock

        connection._create_connection = create  # type: ignore[attr-defined]

    class Connection(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            watched(self)

    class SecureConnection(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            watched(self)

        def connect(self) -> None:
            # HTTPSConnection.connect, with the TLS handshake under the
            # deadline too (the plain socket is handed over to the TLS one).
            http.client.HTTPConnection.connect(self)
            host = self._tunnel_host or self.host  # type: ignore[attr-defined]
            context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
            self.sock = context.wrap_socket(self.sock, server_hostname=host, do_handshake_on_connect=False)
            deadline.watch(self.sock)
            self.sock.do_handshake()

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class Secure(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            context = getattr(self, "_context", None)
            return self.do_open(SecureConnection, req, context=context)

    return [_Redirects(), Plain(), Secure()]


def fetch(url: str, limit: int) -> tuple[bytes, str]:
    """The body of a ``GET`` of ``url`` (at most ``limit + 1`` bytes: the
    core refuses a body longer than ``limit``) and the URL it was finally
    read from, after redirects. Raises ``OSError`` with a message saying
    what went wrong: a body shorter than its ``Content-Length`` is an
    error, never a short body."""
    with _Deadline(REQUEST_TIMEOUT) as deadline:
        try:
            return _fetch(url, limit, deadline)
        except OSError:
            if deadline.expired:
                raise OSError(f"the request took longer than {REQUEST_TIMEOUT:g} s") from None
            raise


def _fetch(url: str, limit: int, deadline: _Deadline) -> tuple[bytes, str]:
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise OSError(f"only http(s) is read, not {url!r}")
    opener = urllib.request.build_opener(*_handlers(deadline))
    request = urllib.request.Request(url, headers={"User-Agent": f"module-registry/{__version__}"})
    try:
        with opener.open(request, timeout=CONNECT_TIMEOUT) as response:
            final = response.geturl()
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                if deadline.expired:
                    raise OSError("deadline")
                chunk = response.read1(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            left = getattr(response, "length", None)
            if total <= limit and left:
                raise OSError(
                    f"the connection closed after {total} of {total + left} bytes (truncated body)"
                )
            return b"".join(chunks), final
    except urllib.error.HTTPError as error:
        raise OSError(f"HTTP status {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, OSError) and "only http(s)" in str(reason):
            raise OSError(str(reason)) from None
        raise OSError(f"cannot connect: {reason}") from None
    except TimeoutError:
        raise OSError(f"no answer within {CONNECT_TIMEOUT:g} s") from None
    except OSError:
        raise
    except Exception as error:  # http.client's protocol errors and the like
        raise OSError(f"{type(error).__name__}: {error}") from None
