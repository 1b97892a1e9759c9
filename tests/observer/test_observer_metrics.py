"""observer/metrics.py and observer/exporter.py on ticks as the sampler makes them: counters that
only grow, a bounded label set, a reused pid kept apart, an exited VM kept for a while, the
scrape's text as Prometheus parses it, and the command line's refusals."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observer.discovery import VmKey, VmProcess
from observer.exporter import ObserverCollector, parse_address
from observer.metrics import ObserverMetrics, Series
from observer.sampler import AddressSample, Tick


def vm(pid: int, start: int = 100, vcpus: int = 1, comm: str = "qemu") -> VmProcess:
    started = datetime.fromtimestamp(1_700_000_000 + start / 100, UTC)
    return VmProcess(VmKey(pid, start), started, comm, comm, vcpus, (3,))


def tick(live: list[VmProcess], samples=(), ended=()) -> Tick:
    return Tick(
        datetime.now(UTC), 1.0, {v.key: v for v in live}, list(ended), list(samples), {}, {}
    )


def sample(v: VmProcess, addr: int, writes: int, userspace: int = 0, reads: int = 0):
    return AddressSample(v.key, "pio", addr, 4, writes, userspace, reads, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counts(m: ObserverMetrics, v: VmProcess) -> dict[Series, tuple[int, ...]]:
    return next(c for p, _, c in m.snapshot().vms if p.key == v.key)


def test_counters_add_up_ticks_and_only_grow() -> None:
    a = vm(10)
    m = ObserverMetrics("h", ["kvm_pio"])
    m.add(tick([a], [sample(a, 0x510, 5, 0), sample(a, 0x520, 3, 3, reads=2)]))
    m.add(tick([a], [sample(a, 0x510, 7, 1)]))
    assert counts(m, a) == {
        Series("pio", "0x510", "4"): (12, 1, 0, 0),
        Series("pio", "0x520", "4"): (3, 3, 2, 0),
    }
    assert m.snapshot().ticks == 2


def test_the_busiest_new_doorbells_get_the_places_and_the_rest_is_other_for_good() -> None:
    a = vm(10)
    m = ObserverMetrics("h", [], max_addresses=2)
    m.add(tick([a], [sample(a, 0x1, 1), sample(a, 0x2, 50), sample(a, 0x3, 9)]))
    first = counts(m, a)
    assert set(first) == {
        Series("pio", "0x2", "4"),
        Series("pio", "0x3", "4"),
        Series("pio", "other", ""),
    }
    assert first[Series("pio", "other", "")][0] == 1
    # 0x1 becomes the busiest: it stays in "other", which only grows; nothing moves back
    m.add(tick([a], [sample(a, 0x1, 1000), sample(a, 0x4, 5)]))
    second = counts(m, a)
    assert set(second) == set(first)
    assert second[Series("pio", "other", "")][0] == 1 + 1000 + 5
    assert all(x >= y for k in first for x, y in zip(second[k], first[k], strict=True))


def test_a_reused_pid_is_another_vm_and_an_exited_one_stays_a_while() -> None:
    clock = Clock()
    old, new = vm(10, start=100), vm(10, start=900, comm="firecracker")
    m = ObserverMetrics("h", [], keep_ended_s=300, clock=clock)
    m.add(tick([old], [sample(old, 0x510, 40)]))
    clock.now = 1
    m.add(tick([new], [sample(old, 0x510, 2), sample(new, 0x510, 7)], ended=[old.key]))
    snap = m.snapshot()
    by = {p.key: (running, c) for p, running, c in snap.vms}
    assert by[old.key] == (False, {Series("pio", "0x510", "4"): (42, 0, 0, 0)})  # its last counts
    assert by[new.key] == (True, {Series("pio", "0x510", "4"): (7, 0, 0, 0)})
    clock.now = 301.5
    m.add(tick([new]))
    assert [p.key for p, _, _ in m.snapshot().vms] == [new.key]


def test_the_scrape_is_prometheus_text_with_identity_and_health() -> None:
    a = vm(10, vcpus=2)
    m = ObserverMetrics(
        "host-a", ["kvm_pio", "kvm_mmio"], drops=lambda: {"unmatched": 3}, missed=lambda: 4
    )
    m.add(tick([vm(10, vcpus=1)]))
    m.add(tick([a], [sample(a, 0x510, 5, 2, reads=1)]))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ObserverCollector(m))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    ident = {"host": "host-a", "pid": "10", "start": "1700000001.00"}
    door = tuple(sorted({**ident, "space": "pio", "addr": "0x510", "len": "4"}.items()))
    assert samples["iosignal_guest_writes_total", door] == 5
    assert samples["iosignal_guest_userspace_exits_total", door] == 2
    assert samples["iosignal_guest_reads_total", door] == 1
    info = tuple(sorted({**ident, "comm": "qemu", "vcpus": "2"}.items()))
    assert samples["iosignal_vm_info", info] == 1  # the identity as last seen
    host = (("host", "host-a"),)
    assert samples["iosignal_observer_ticks_total", host] == 2
    assert samples["iosignal_observer_missed_ticks_total", host] == 4
    assert samples["iosignal_observer_vms", host] == 1
    assert (
        samples["iosignal_observer_drops_total", (("host", "host-a"), ("kind", "unmatched"))] == 3
    )
    attached = [ls for n, ls in samples if n == "iosignal_observer_programs_attached"]
    assert len(attached) == 2


def test_a_scrape_during_ticks_sees_whole_ticks() -> None:
    a = vm(10)
    m = ObserverMetrics("h", [])
    stop = threading.Event()

    def ticking() -> None:
        while not stop.is_set():  # two doorbells, always counted in the same tick
            m.add(tick([a], [sample(a, 0x1, 1), sample(a, 0x2, 1)]))

    t = threading.Thread(target=ticking)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often enough to land between two doorbells
    t.start()
    try:
        for _ in range(2000):
            c = counts(m, a) if m.snapshot().vms else {}
            if c:
                assert c[Series("pio", "0x1", "4")] == c[Series("pio", "0x2", "4")]
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(switch)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("9464", "not HOST:PORT"),
        ("host:0", "port 1-65535"),
        ("::1:9464", "IPv6 host goes in brackets"),
    ],
)
def test_a_bad_metrics_address_says_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        parse_address(text)
    assert parse_address("[::1]:9464") == ("::1", 9464)


def test_no_database_needs_a_metrics_address() -> None:
    cmd = [sys.executable, "-m", "cli.main", "observe", "--no-database"]
    wide = {**os.environ, "COLUMNS": "400"}  # rich's error box on one line
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=wide)
    assert done.returncode == 2
    assert "--no-database leaves nothing to do without --metrics-address" in done.stderr
