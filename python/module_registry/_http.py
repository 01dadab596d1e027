"""How the package reads ``http://`` and ``https://`` package indexes.

The extension carries no TLS stack of its own: it calls :func:`fetch`, which
reads through Python's ``urllib``, so the proxies (``HTTPS_PROXY``,
``NO_PROXY``) and certificates (the system's store, ``SSL_CERT_FILE``)
Python is set up with apply here as to any other download. The limits are
the Rust core's: 10 s to connect or to wait for any one read, 60 s for the
whole request, at most 5 redirects, and no more than ``limit`` bytes.

Imported on the first ``http(s)://`` read only, so that importing the
package does not import ``urllib.request`` (and through it ``ssl``, ``email``
and ``http.client``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from ._core import __version__

#: Seconds to connect, and to wait for any one read.
CONNECT_TIMEOUT = 10.0
#: Seconds for the whole request, body included.
REQUEST_TIMEOUT = 60.0
#: Redirects followed before giving up.
MAX_REDIRECTS = 5

_CHUNK = 64 * 1024


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS
    max_repeats = MAX_REDIRECTS


def fetch(url: str, limit: int) -> bytes:
    """The body of a ``GET`` of ``url``: at most ``limit + 1`` bytes (the
    core refuses a body longer than ``limit``). Raises ``OSError`` with a
    message saying what went wrong."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    opener = urllib.request.build_opener(_Redirects())
    request = urllib.request.Request(
        url, headers={"User-Agent": f"module-registry/{__version__}"}
    )
    try:
        with opener.open(request, timeout=CONNECT_TIMEOUT) as response:
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                if time.monotonic() > deadline:
                    raise OSError(
                        f"the request took longer than {REQUEST_TIMEOUT:g} s"
                    )
                chunk = response.read1(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as error:
        raise OSError(f"HTTP status {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise OSError(f"cannot connect: {error.reason}") from None
    except TimeoutError:
        raise OSError(f"no answer within {CONNECT_TIMEOUT:g} s") from None
    except OSError:
        raise
    except Exception as error:  # http.client's protocol errors and the like
        raise OSError(f"{type(error).__name__}: {error}") from None
