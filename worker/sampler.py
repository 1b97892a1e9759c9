"""The sampler: reads every eventfd counter and the exit counters into samples.

An eventfd adds every signal to one 64-bit counter and a non-blocking read returns the sum and
resets it, so a collect costs one read per registration, whatever the signal rate. Intervals come
from the monotonic clock; taken_at is wall-clock UTC for storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from worker.guest.passes import ExitCounter
    from worker.machine import Machine
    from worker.registry import Registry


class SignalSample(NamedTuple):
    """Signals one registration's eventfd counted in one interval."""

    key: int
    taken_at: datetime
    signals: int
    interval_s: float


class ExitSample(NamedTuple):
    """Userspace exits of writes to one (space, addr, len) in one interval."""

    space: str
    addr: int
    len: int
    taken_at: datetime
    exits: int
    interval_s: float


class Collected(NamedTuple):
    """One collect: a SignalSample per registration (and removed leftovers), exits > 0 only."""

    signals: list[SignalSample]
    exits: list[ExitSample]


def utc_now() -> datetime:
    """Timezone-aware wall-clock now in UTC."""
    return datetime.now(UTC)


class Sampler:
    """Turns a machine's counters into samples; `collect()` is safe from any thread."""

    def __init__(
        self,
        machine: Machine,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.machine = machine
        self.clock = clock
        self.wallclock = wallclock
        self._lock = threading.Lock()  # two concurrent collects must not share an interval
        self._last = clock()

    def collect(self) -> Collected:
        """Read and reset every counter; intervals run from the previous collect."""
        registry, exit_counter = self.machine.registry, self.machine.exits
        if registry is None or exit_counter is None:
            return Collected([], [])
        with self._lock:
            return self._collect(registry, exit_counter)

    def _collect(self, registry: Registry, exit_counter: ExitCounter) -> Collected:
        drained = registry.drain()
        exits = exit_counter.swap()
        now, taken_at = self.clock(), self.wallclock()
        last, self._last = self._last, now
        counts: dict[int, tuple[int, float]] = {}
        for key, (n, since, removed_at) in drained.removed.items():
            counts[key] = (n, max(0.0, removed_at - max(last, since)))
        for key, (n, since) in drained.live.items():
            # A key removed and registered again since the last collect: one sample, summed.
            prev_n, prev_s = counts.get(key, (0, 0.0))
            counts[key] = (prev_n + n, max(prev_s, now - max(last, since)))
        return Collected(
            [SignalSample(key, taken_at, n, s) for key, (n, s) in sorted(counts.items())],
            [
                ExitSample(space, addr, length, taken_at, n, now - last)
                for (space, addr, length), n in sorted(exits.items())
                if n
            ],
        )
