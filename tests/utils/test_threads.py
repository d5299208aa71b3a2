"""The helper thread of single queries (skxmc.utils._threads.run_aside)."""

import threading

import pytest

from skxmc.utils import _threads


def _thread_name():
    return threading.current_thread().name


@pytest.mark.parametrize(
    "load, spare", [(0.3, True), (1.2, True), (1.6, False), (7.0, False)]
)
def test_the_helper_runs_only_while_a_core_is_spare(monkeypatch, load, spare):
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(_threads, "_load_check", [float("-inf"), True])
    name = _threads.run_aside(_thread_name).result()
    assert name.startswith("skxmc-aside") == spare
    assert isinstance(_threads.run_aside(_thread_name), _threads._Done) != spare
    # the policy off: the helper whatever the load; disabled: never
    monkeypatch.setattr(_threads, "ASIDE_ONLY_SPARE_CORE", False)
    assert _threads.run_aside(_thread_name).result().startswith("skxmc-aside")
    monkeypatch.setattr(_threads, "ASIDE_ENABLED", False)
    assert _threads.run_aside(_thread_name).result() == _thread_name()


def test_the_load_is_read_at_most_once_a_second(monkeypatch):
    readings = []

    def getloadavg():
        readings.append(1)
        return (0.1, 0.1, 0.1)

    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(_threads.os, "getloadavg", getloadavg)
    monkeypatch.setattr(_threads, "_load_check", [float("-inf"), True])
    for _ in range(50):
        _threads.run_aside(_thread_name).result()
    assert len(readings) == 1
