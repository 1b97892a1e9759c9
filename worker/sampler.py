"""The sampler: reads every eventfd counter and the exit counters into samples.

An eventfd adds every signal to one 64-bit counter and a non-blocking read returns the sum and
resets it, so a collect costs one read per registration, whatever the signal rate. Intervals come
from the monotonic clock; taken_at is wall-clock UTC for storage.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from worker.exits import ExitCounter
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


class AnswerSample(NamedTuple):
    """An answered doorbell's kicks (its writes) and the device's interrupts in one interval."""

    space: str
    addr: int
    len: int
    taken_at: datetime
    kicks: int
    interrupts: int
    interval_s: float


class Collected(NamedTuple):
    """One collect: a SignalSample per registration (and removed leftovers), exits > 0 only,
    and an AnswerSample per answered doorbell (idle ones too: a stalled device shows as 0)."""

    signals: list[SignalSample]
    exits: list[ExitSample]
    answers: list[AnswerSample] = []


def utc_now() -> datetime:
    """Timezone-aware wall-clock now in UTC."""
    return datetime.now(UTC)


class Sampler:
    """Turns a VM's counters (eventfds, exits) into samples; `collect()` is safe from any thread."""

    def __init__(
        self,
        registry: Registry,
        exits: ExitCounter,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = utc_now,
        answers: Callable[[], dict[tuple[str, int, int], tuple[int, int]]] = dict,
    ) -> None:
        self.registry, self.exits, self.answers = registry, exits, answers
        self.clock = clock
        self.wallclock = wallclock
        self._lock = threading.Lock()  # two concurrent collects must not share an interval
        self._last = clock()

    def collect(self) -> Collected:
        """Read and reset every counter; intervals run from the previous collect."""
        with self._lock:
            return self._collect()

    def _collect(self) -> Collected:
        drained = self.registry.drain()
        exits = self.exits.swap()
        answers = self.answers()
        now, taken_at = self.clock(), self.wallclock()
        interval, self._last = now - self._last, now
        # Every sample of a tick covers the whole tick, a registration made or removed mid-tick
        # included: the exit and signal rates of one doorbell then add up to its rate, and a
        # short partial interval cannot turn the guest's bursts into a spike.
        counts = Counter(drained.removed)
        counts.update(drained.live)  # a key removed and registered again: one sample, summed
        return Collected(
            [SignalSample(key, taken_at, n, interval) for key, n in sorted(counts.items())],
            [
                ExitSample(space, addr, length, taken_at, n, interval)
                for (space, addr, length), n in sorted(exits.items())
                if n
            ],
            [
                AnswerSample(space, addr, length, taken_at, kicks, interrupts, interval)
                for (space, addr, length), (kicks, interrupts) in sorted(answers.items())
            ],
        )
