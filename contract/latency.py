"""Doorbell latency histograms as the observer's programs keep them (kvm_latency.bpf.c), for
every side that reads them: the observer's reader, the store, the API and /metrics.

A histogram is {slot: count}. Slots are log-linear over nanoseconds: below 16 ns a slot is one
nanosecond; above, each power of two is cut in 8 equal steps, so a bucket is at most 1/8 of its
lower bound wide. Bucket counts of the same doorbell and stage add (per minute, per VM).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# the stages, in the chain's order: what each times
STAGES = ("kick_to_run", "kick_to_irq", "irq_to_vcpu")
STAGE_MEANING = {
    "kick_to_run": "guest write to the consumer thread it woke running",
    "kick_to_irq": "guest write to the consumer's interrupt into the VM",
    "irq_to_vcpu": "that interrupt to the halted vCPU running again",
}


def slot_bounds(slot: int) -> tuple[int, int]:
    """The nanoseconds [low, high) of a slot."""
    if slot < 16:
        return slot, slot + 1
    octave, step = slot // 8 + 2, slot % 8
    unit = 1 << (octave - 3)
    return (8 + step) * unit, (9 + step) * unit


def slot_of(ns: int) -> int:
    """The slot holding `ns` (what the programs compute)."""
    if ns < 16:
        return max(ns, 0)
    octave = ns.bit_length() - 1
    return (octave - 2) * 8 + ((ns >> (octave - 3)) & 7)


def add(into: dict[int, int], more: Mapping[int, int]) -> dict[int, int]:
    """`into` with `more`'s counts added (histograms of the same doorbell and stage add)."""
    for slot, n in more.items():
        into[slot] = into.get(slot, 0) + n
    return into


def percentile(hist: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile in nanoseconds (0 < q <= 100), interpolated inside its bucket;
    None for an empty histogram."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = q / 100 * total
    seen = 0
    for slot in sorted(hist):
        n = hist[slot]
        if n <= 0:
            continue
        if seen + n >= rank:
            low, high = slot_bounds(slot)
            return low + (high - low) * (rank - seen) / n
        seen += n
    low, high = slot_bounds(max(hist))
    return float(high)


def cumulative(hist: Mapping[int, int]) -> Iterable[tuple[int, int]]:
    """(upper bound in ns, count at or below it) per non-empty slot, ascending (Prometheus)."""
    seen = 0
    for slot in sorted(hist):
        seen += hist[slot]
        yield slot_bounds(slot)[1], seen
