"""Thread helpers for the small calls of the serving path."""

from __future__ import annotations

import _thread
import os
import queue
import threading
from contextlib import contextmanager
from numbers import Integral

__all__ = ["effective_n_jobs", "map_row_chunks", "run_aside", "torch_threads"]


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

#: Whether the machine has a second core for the helper (read once:
#: ``os.cpu_count()`` reads sysfs, ~20 us, and a query asks several times).
_SEVERAL_CORES = (os.cpu_count() or 1) > 1

_aside_lock = threading.Lock()
_aside_tasks = None  # the helper thread's queue of _AsideCall, once started


def _reset_after_fork() -> None:
    # a forked child has no helper thread: start a new one when needed
    global _aside_tasks
    _aside_tasks = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class _Done:
    """The result of a call already made (``concurrent.futures`` style)."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


class _AsideCall:
    """A call for the helper thread; ``result()`` waits for it.

    A plain lock held until the call is done, instead of a
    ``concurrent.futures`` future: the hand-over is a few C calls on both
    sides, so the helper holds the GIL only briefly while the caller runs
    its own stages (a ThreadPoolExecutor's Python bookkeeping made each of
    a single query's hand-overs cost the caller ~0.05 ms).
    """

    __slots__ = ("_args", "_done", "_error", "_fn", "_value")

    def __init__(self, fn, args):
        self._fn = fn
        self._args = args
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._value = self._error = None

    def run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as error:  # re-raised in the caller's thread
            self._error = error
        self._fn = self._args = None
        self._done.release()

    def result(self):
        with self._done:  # free once the call ran
            pass
        if self._error is not None:
            raise self._error
        return self._value


def _serve_aside(tasks) -> None:
    get = tasks.get
    while True:
        get().run()


def run_aside(fn, *args, enabled: bool = True):
    """Start ``fn(*args)`` on a helper thread; ``.result()`` waits for it.

    Lets a single query run two independent stages on two cores, e.g. the
    label-text shortlist while the network scores the clusters. The helper
    is one daemon thread shared by the process (calls queue up behind each
    other); give it only work that releases the GIL (numba ``nogil``
    kernels), and never call ``run_aside`` from inside such work (it would
    wait for itself). An exception of ``fn`` is raised by ``.result()``.
    With ``enabled=False`` (or ``ASIDE_ENABLED`` False, or one core) the
    call runs at once in the caller's thread.

    Examples
    --------
    >>> from skxmc.utils._threads import run_aside
    >>> run_aside(sum, [1, 2, 3]).result()
    6
    """
    global _aside_tasks
    if not (enabled and ASIDE_ENABLED and _SEVERAL_CORES):
        return _Done(fn(*args))
    if _aside_tasks is None:
        with _aside_lock:
            if _aside_tasks is None:
                tasks = queue.SimpleQueue()
                threading.Thread(
                    target=_serve_aside, args=(tasks,), name="skxmc-aside", daemon=True
                ).start()
                _aside_tasks = tasks
    call = _AsideCall(fn, args)
    _aside_tasks.put(call)
    return call


def effective_n_jobs(n_jobs: int | None) -> int:
    """Number of threads for the numba kernels.

    ``None`` and ``-1`` mean every core numba may use (the kernels are
    OpenMP-style like those of scikit-learn's histogram gradient boosting);
    ``-2`` all but one, and so on; positive values are capped at that number.
    """
    import numba

    available = int(numba.config.NUMBA_NUM_THREADS)
    if n_jobs is None:
        return available
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}.")
    if n_jobs < 0:
        return max(1, available + 1 + int(n_jobs))
    return min(int(n_jobs), available)


def map_row_chunks(fn, n_rows: int, n_jobs: int | None, *, min_rows: int = 256):
    """Run ``fn(start, stop)`` over row chunks of ``range(n_rows)`` on threads.

    For row-independent work whose kernels release the GIL (numba
    ``nogil``): every chunk is computed exactly as a serial pass would
    compute it, so the result does not depend on the number of threads.
    Fewer than ``2 * min_rows`` rows (or one thread) run in the calling
    thread, without a pool.

    Parameters
    ----------
    fn : callable
        ``fn(start, stop)``, writing the rows ``start:stop`` of its output.
    n_rows : int
        Rows in all.
    n_jobs : int or None
        Threads, as :func:`effective_n_jobs` reads them (None: all cores).
    min_rows : int, default=256
        Rows of the smallest chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.utils._threads import map_row_chunks
    >>> out = np.zeros(1000)
    >>> def fill(start, stop):
    ...     out[start:stop] = np.arange(start, stop)
    >>> map_row_chunks(fill, 1000, n_jobs=2, min_rows=100)
    >>> bool((out == np.arange(1000)).all())
    True
    """
    n_threads = min(effective_n_jobs(n_jobs), n_rows // max(1, min_rows))
    if n_threads <= 1:
        fn(0, n_rows)
        return
    from concurrent.futures import ThreadPoolExecutor

    n_chunks = min(4 * n_threads, max(1, n_rows // max(1, min_rows)))
    bounds = [
        (c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks) for c in range(n_chunks)
    ]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for future in [pool.submit(fn, a, b) for a, b in bounds]:
            future.result()
