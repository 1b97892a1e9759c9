"""Workloads: doorbells with rates, and the pacer that turns rates into guest passes.

Each pass the pacer gives every doorbell `rate_hz * elapsed` writes, carrying the fraction to the
next pass, so the long-run rate is exact whatever the pass timing. Passes follow a monotonic
deadline schedule; after a stall longer than `max_lag` the missed time is skipped, not replayed
as a burst.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from contract import rules
from contract.guest import DEFAULT_MEM_SIZE
from worker.guest.table import Ring


class Doorbell(NamedTuple):
    """A doorbell the guest rings: `value` (`len` bytes) to `addr` on `space`, at `rate_hz`."""

    space: str
    addr: int
    len: int
    value: int
    rate_hz: float
    answered: bool = False  # a device answers each write with an interrupt the guest waits for


def check_doorbell(bell: Doorbell, mem_size: int = DEFAULT_MEM_SIZE) -> None:
    """Raise ValueError naming the rule unless the guest can ring `bell` at its rate."""
    problem = rules.doorbell_problem(
        bell.space, bell.addr, bell.len, bell.value, mem_size
    ) or rules.rate_problem(bell.rate_hz, bell.answered)
    if problem:
        raise ValueError(problem)


PERIOD_S = 0.01  # a pass every 10 ms: a doorbell at R/s rings R/100 times a pass


class Pacer:
    """Plans passes so each doorbell rings at its rate; thread-safe `set`."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        period: float = PERIOD_S,
        max_lag: float = 0.25,
    ) -> None:
        self.clock = clock
        self.period = period
        self.max_lag = max_lag
        self._lock = threading.Lock()
        self._bells: list[Doorbell] = []
        self._carry: list[float] = []
        self._last: float | None = None  # when the previous pass was planned
        self._deadline = 0.0

    @staticmethod
    def check(bells: list[Doorbell], mem_size: int = DEFAULT_MEM_SIZE) -> None:
        """Raise ValueError naming the rule unless the whole workload can be rung."""
        for bell in bells:
            check_doorbell(bell, mem_size)
        problem = rules.workload_problem([bell.rate_hz for bell in bells])
        if problem:
            raise ValueError(problem)

    def set(self, bells: list[Doorbell], mem_size: int = DEFAULT_MEM_SIZE) -> None:
        """Replace the workload; validated whole, so a bad doorbell changes nothing."""
        self.check(bells, mem_size)
        with self._lock:
            old = {b[:4]: carry for b, carry in zip(self._bells, self._carry, strict=True)}
            self._bells = [b for b in bells if b.rate_hz > 0]
            self._carry = [old.get(b[:4], 0.0) for b in self._bells]  # keep fractions
            if not self._bells:
                self._last = None

    @property
    def doorbells(self) -> list[Doorbell]:
        """The current workload (rate 0 doorbells dropped)."""
        with self._lock:
            return list(self._bells)

    def wait_time(self, now: float) -> float | None:
        """Seconds until the next pass is due; None when there is nothing to ring."""
        with self._lock:
            if not self._bells:
                return None
            if self._last is None:
                return 0.0
            return max(0.0, self._deadline - now)

    def plan(self, now: float) -> list[Ring]:
        """The writes of the pass starting at `now` (call when wait_time says it is due)."""
        with self._lock:
            if self._last is None:
                elapsed, self._deadline = self.period, now
            else:
                elapsed = now - self._last
            if elapsed > self.max_lag:  # stalled: skip the missed time instead of bursting
                elapsed, self._deadline = self.period, now
            self._last = now
            self._deadline += self.period
            if self._deadline < now:  # late but within max_lag: next pass right away
                self._deadline = now
            rings = []
            for i, bell in enumerate(self._bells):
                want = bell.rate_hz * elapsed + self._carry[i]
                count = int(want)
                self._carry[i] = want - count
                if count:
                    ring = Ring(bell.space, bell.addr, bell.len, bell.value, count, bell.answered)
                    rings.append(ring)
            return rings
