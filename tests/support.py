"""Helpers shared by tests in every folder (tests/ is on sys.path via pytest's pythonpath)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(part: str, ok: bool, how: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless the real `part` is available."""
    if ok:
        return
    message = f"{part} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05):
    """Poll `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exit_row(vm_id: int, when, exits: int, *, space="pio", addr=0x6000, length=4, **kw):
    """An exit sample as the worker writes it; `rollup=True` for a per-minute rollup row."""
    from contract.models import ExitRollup, ExitSample

    key = {"vm_id": vm_id, "space": space, "addr": addr, "len": length, "exits": exits}
    if kw.pop("rollup", False):
        return ExitRollup(**key, minute_at=when, interval_s=60.0, **kw)
    return ExitSample(**key, taken_at=when, interval_s=kw.pop("interval_s", 1.0), **kw)


class FakeTime:
    """A monotonic clock that only moves when waited on (or told to), and a stop Event twin."""

    def __init__(self, waits: int) -> None:
        self.now, self.waits, self.slept = 100.0, waits, []

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.slept.append(round(timeout, 6))
        self.now += timeout
        self.waits -= 1
        return self.waits < 0  # "stop is set" after the allowed number of waits
