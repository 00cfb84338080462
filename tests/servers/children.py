"""Server processes that die with the test process, even when it is killed outright."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when its parent thread ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tied_to_this_process() -> Callable[[], None] | None:
    """`preexec_fn` for a server that must not outlive this process.

    Linux signals the death of the forking *thread*, so a server started from another thread
    (which may end first) is left untied rather than killed early.
    """
    if threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None
