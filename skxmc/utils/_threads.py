"""Thread helpers for the small calls of the serving path."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

__all__ = ["run_aside", "torch_threads"]


@contextmanager
def torch_threads(n_threads: int | None):
    """Run torch's CPU operations on at most ``n_threads`` threads in the block.

    A single query's tensors are small: splitting each operation over the
    intra-op threads costs a fork and a join per operation, and on busy cores
    a join waits for a thread that is not scheduled (a DECAF query took ~3x
    as long on two threads as on one on a shared two-core machine). The
    setting is process-wide while the block runs (as ``threadpoolctl``'s
    limits are), and restored afterwards.

    Parameters
    ----------
    n_threads : int or None
        Thread limit; None (or a limit at least the current count) changes
        nothing.

    Examples
    --------
    >>> import torch
    >>> from skxmc.utils._threads import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    previous = torch.get_num_threads()
    if n_threads is None or n_threads >= previous:
        yield
        return
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: Whether :func:`run_aside` may use its helper thread (False: every call
#: runs at once in the caller's thread, e.g. for a per-stage profile).
ASIDE_ENABLED = True

_aside_lock = threading.Lock()
_aside_executor = None


def _reset_after_fork() -> None:
    # a forked child has no helper thread: start a new executor when needed
    global _aside_executor
    _aside_executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class _Done:
    """The result of a call already made (``concurrent.futures`` style)."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


def run_aside(fn, *args, enabled: bool = True):
    """Start ``fn(*args)`` on a helper thread; ``.result()`` waits for it.

    Lets a single query run two independent stages on two cores, e.g. the
    label-text shortlist while the network scores the clusters. The helper
    is one daemon thread shared by the process (calls queue up behind each
    other); give it only work that releases the GIL (numba ``nogil``
    kernels), and never call ``run_aside`` from inside such work (it would
    wait for itself). With ``enabled=False`` (or ``ASIDE_ENABLED`` False, or
    one core) the call runs at once in the caller's thread.

    Examples
    --------
    >>> from skxmc.utils._threads import run_aside
    >>> run_aside(sum, [1, 2, 3]).result()
    6
    """
    global _aside_executor
    if not (enabled and ASIDE_ENABLED and (os.cpu_count() or 1) > 1):
        return _Done(fn(*args))
    if _aside_executor is None:
        from concurrent.futures import ThreadPoolExecutor

        with _aside_lock:
            if _aside_executor is None:
                _aside_executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="skxmc-aside"
                )
    return _aside_executor.submit(fn, *args)
