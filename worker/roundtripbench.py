"""The round-trip rows of `iosignal bench`: the guest kicks a doorbell and waits for the device's
interrupt, `requests` times in a row, with the device answering three ways (worker.roundtrip).

Each request's round trip is timed by the guest's TSC: the row's rtt median, p99, min and max are
over every request of every repeat. requests/s is timed by the host clock (median repeat), and
"guest rtt us" is the guest's TSC time per request over the whole run (median repeat). Every pass
is checked: N kicks, N interrupts, and the device saw and answered N.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import NamedTuple

from worker.guest.requests import MAX_PASS_REQUESTS, Request
from worker.kvm import Kvm
from worker.roundtrip import RoundTrip

WARMUP_REQUESTS = 1000  # builds KVM's I/O paths and wakes the consumer before timing


class RoundTripPath(NamedTuple):
    """One round-trip row: who answers the kick (RoundTrip.answer) and how the guest waits."""

    name: str
    answer: str
    wait: str


# contract.benchpaths' round-trip paths, in its order. The guest halts on every path, so a row
# differs from the next only in how the device learns of the kick and waits for it.
PATHS = {
    p.name: p
    for p in (
        RoundTripPath("roundtrip-userspace", "exit", "hlt"),
        RoundTripPath("roundtrip-ioeventfd-irqfd", "irqfd", "hlt"),
        RoundTripPath("roundtrip-ioeventfd-irqfd-poll", "irqfd-poll", "hlt"),
    )
}


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (p99 of 100 samples is the 99th)."""
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run_path(
    kvm: Kvm,
    path: RoundTripPath,
    doorbell: tuple[str, int, int],
    requests: int,
    repeat: int,
    tick: Callable[[], None],
) -> dict:
    """`repeat` runs of `requests` round trips on a fresh VM; the row `iosignal bench` prints."""
    space, addr, value = doorbell
    trip = RoundTrip(kvm, path.answer, Request(space, addr, value, path.wait))
    try:
        trip.run_pass(WARMUP_REQUESTS)
        assert trip.vm.vcpu is not None
        tsc_khz = trip.vm.vcpu.get_tsc_khz()
        seconds, ticks, rtts = [], [], []
        for _ in range(repeat):
            run_seconds, run_ticks = 0.0, 0
            for start in range(0, requests, MAX_PASS_REQUESTS):
                result = trip.run_pass(min(MAX_PASS_REQUESTS, requests - start))
                run_seconds += result.seconds
                run_ticks += result.ticks
                rtts.extend(result.rtts)
            seconds.append(run_seconds)
            ticks.append(run_ticks)
            tick()
    finally:
        trip.close()
    us = sorted(t * 1e3 / tsc_khz for t in rtts)
    return {
        "path": path.name,
        "writes": requests,
        "iops": round(requests / statistics.median(seconds), 1),
        "rtt_us": round(statistics.median(us), 4),
        "rtt_us_min": round(us[0], 4),
        "rtt_us_max": round(us[-1], 4),
        "rtt_us_p99": round(percentile(us, 99), 4),
        "guest_rtt_us": round(statistics.median(ticks) * 1e3 / tsc_khz / requests, 4),
    }
