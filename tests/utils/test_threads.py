"""The helper thread of the serving path (skxmc.utils._threads.run_aside)."""

import os
import signal
import threading

import pytest

from skxmc.utils import _threads
from skxmc.utils._threads import run_aside


@pytest.fixture
def several_cores(monkeypatch):
    # the helper runs only where there is a second core: force it on
    monkeypatch.setattr(_threads, "_SEVERAL_CORES", True)
    monkeypatch.setattr(_threads, "ASIDE_ENABLED", True)


def test_runs_on_another_thread_and_returns_the_value(several_cores):
    call = run_aside(lambda a, b: (threading.get_ident(), a + b), 2, 3)
    ident, value = call.result()
    assert value == 5
    assert ident != threading.get_ident()
    assert call.result() == (ident, 5)  # a second result() does not block


def test_disabled_runs_in_the_calling_thread(several_cores):
    assert run_aside(threading.get_ident, enabled=False).result() == (
        threading.get_ident()
    )


def test_the_exception_of_the_call_is_raised_by_result(several_cores):
    def fails():
        raise KeyError("from the helper")

    call = run_aside(fails)
    with pytest.raises(KeyError, match="from the helper"):
        call.result()
    # the helper survives a failed call
    assert run_aside(sum, [1, 2]).result() == 3


def test_calls_run_one_after_the_other_in_submission_order(several_cores):
    gate = threading.Event()
    order = []
    first = run_aside(lambda: (gate.wait(5), order.append(1)))
    second = run_aside(order.append, 2)
    assert order == []  # both wait behind the gate
    gate.set()
    first.result()
    second.result()
    assert order == [1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads
def test_a_forked_child_starts_its_own_helper(several_cores):
    assert run_aside(sum, [1]).result() == 1  # the parent's helper exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's thread is gone; a new one must answer
        ok = False
        signal.alarm(10)  # a call queued for the parent's thread never returns
        try:
            ok = run_aside(sum, [2, 3]).result() == 5
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
