"""What the doorbell latency programs (observer/progs/kvm_latency.bpf.c) cost, for
`iosignal observe --bench`.

The scheduler tracepoints fire for every thread on the host: the programs there look the
thread up in task-local storage and leave. What that costs everyone else is measured on a
workload that is not a VM at all: two processes on one CPU passing a byte back and forth
through pipes, so every message is a wake (sched_waking) and a context switch (sched_switch).
Phases alternate (without, floor, with, with, floor, without, ...) so drift cancels: the floor
attaches programs that return at once to the same two tracepoints. The guests' side: the
ioeventfd write path of the observe bench's VM (kvm_pio runs the kick program on every write).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

OFF, FLOOR, ON = "off", "floor", "on"
PHASES = (OFF, FLOOR, ON)


def ping_pong(round_trips: int) -> float:
    """Round trips per second between this process and a child, both on one CPU (each
    message wakes the other side and switches to it)."""
    cpu = min(os.sched_getaffinity(0))
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    pid = os.fork()
    if pid == 0:  # the echo side: read a byte, send it back, until the pipe closes
        try:
            os.close(a_w)
            os.close(b_r)
            while os.read(a_r, 1):
                os.write(b_w, b"x")
        finally:
            os._exit(0)
    os.close(a_r)
    os.close(b_w)
    try:
        start = time.perf_counter()
        for _ in range(round_trips):
            os.write(a_w, b"x")
            os.read(b_r, 1)
        return round_trips / (time.perf_counter() - start)
    finally:
        os.close(a_w)
        os.waitpid(pid, 0)
        os.close(b_r)
        os.sched_setaffinity(0, before)


def _phased(
    rounds: int, measure: Callable[[], float], progress: Callable[[float], None] | None
) -> dict[str, list[float]]:
    """`measure()` three times per phase and round, phases alternating in order."""
    from observer.latency import LatencyProbe

    out: dict[str, list[float]] = {p: [] for p in PHASES}
    for r in range(rounds):
        for phase in PHASES if r % 2 == 0 else tuple(reversed(PHASES)):
            probe = None if phase == OFF else LatencyProbe(empty=phase == FLOOR)
            try:
                out[phase] += [measure() for _ in range(3)]
            finally:
                if probe is not None:
                    probe.close()
        if progress is not None:
            progress((r + 1) / rounds)
    return out


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def program_costs(exercise: Callable[[], object]) -> dict[str, tuple[float, int]]:
    """Each latency program's own ns per run and runs while `exercise()` runs (the kernel's
    run-time statistics, every thread on the host)."""
    from observer.bpf import RunStats
    from observer.bpf.program import prog_info
    from observer.latency import LatencyProbe

    with RunStats(), LatencyProbe() as probe:
        exercise()
        out = {}
        for event, fd in probe.program_fds().items():
            info = prog_info(fd)
            out[event] = (info.run_time_ns / max(info.run_cnt, 1), int(info.run_cnt))
    return out


def report(
    rounds: int,
    guest_rate: Callable[[], float],
    stage: Callable[[str], Callable[[float], None]],
    round_trips: int = 20_000,
) -> list[str]:
    """The lines `iosignal observe --bench` prints for the latency programs."""
    pp = _phased(rounds, lambda: ping_pong(round_trips), stage("latency: ping-pong, non-VM"))
    guest = _phased(rounds, guest_rate, stage("latency: guest ioeventfd writes"))
    lines = ["the latency programs (kvm_latency.bpf.c), medians of alternating phases:"]
    for name, by, unit, target in (
        ("non-VM ping-pong", pp, "round trips/s", 0.97),
        ("guest ioeventfd", guest, "writes/s", 0.95),
    ):
        off, floor, on = (_median(by[p]) for p in PHASES)
        lines.append(
            f"  {name:16s} {off:,.0f} -> {on:,.0f} {unit} ({on / off:.3f})   floor "
            f"{floor:,.0f} ({floor / off:.3f})   target >= {target}"
        )
    costs = program_costs(lambda: (ping_pong(round_trips), guest_rate()))
    lines.append("  the programs' own time per run (kernel run-time statistics, whole host):")
    for event, (ns, runs) in costs.items():
        lines.append(f"    {event:20s} {ns:6.0f} ns x {runs:,} runs")
    return lines
