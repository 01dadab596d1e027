"""What the extension calls back in the package, handed to it once when the
package is imported: the extension (``_core``) never imports the package.

``code_digest`` (the step cache's key for Python code), ``display`` (the
notebook displays, looked up by name: ``display.info_html(info)``,
``display.ModuleList``, ...), ``run_coroutine`` (awaits an ``async def``
module's coroutine) and ``http_fetch`` (http(s) package indexes through
urllib). The last two import their modules on first use, so importing the
package imports neither asyncio's helpers nor urllib and ssl.
"""

from __future__ import annotations

from . import _core, _display, _pickling

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import asyncio
    from typing import Any, Coroutine, Optional
del TYPE_CHECKING


def code_digest(handler: Any) -> str:
    """``_pickling.code_digest``, looked up at each call (so that it can be
    replaced, as a test counting its calls does)."""
    return _pickling.code_digest(handler)


def run_coroutine(coro: Coroutine[Any, Any, Any], loop: Optional[asyncio.AbstractEventLoop]) -> Any:
    """``_async.run_coroutine``, imported on the first ``async def`` module."""
    from ._async import run_coroutine as run

    return run(coro, loop)


def http_fetch(url: str, limit: int) -> tuple[bytes, str]:
    """``_http.fetch``, imported on the first http(s) read."""
    from ._http import fetch

    return fetch(url, limit)


_core._set_hooks(code_digest=code_digest, display=_display, run_coroutine=run_coroutine, http_fetch=http_fetch)
