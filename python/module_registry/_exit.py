"""The extension's threads at the edges of the process. At exit (an
``atexit`` hook registered at import, so it runs before the interpreter
finalises): coroutines worker threads wait for are cancelled, the async
worker threads are stopped and joined, and once no thread is inside a
Python call no Rust thread takes the GIL again (CPython would end such a
thread mid-call, aborting the process). In a forked child: the parent's
threads do not exist there, so the extension forgets them."""

from __future__ import annotations

import atexit
import os
import sys

from . import _core


def _at_exit() -> None:
    running_async = sys.modules.get("module_registry._async")
    if running_async is not None:
        running_async._stop()
    _core._shutdown()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core._after_fork_in_child)
