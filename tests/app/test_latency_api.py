"""GET /api/vms/{id}/latency over rows the observer's own store code writes: a minute's ticks
add into one row, the window's percentiles come from the minutes' summed buckets, and the
consumer, rates and suppressed kicks are the stored ones."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from contract.latency import slot_of
from contract.models import utcnow
from observer.latency import Consumer
from observer.latencyreader import LatencyDelta
from observer.latencystore import add_deltas, minute_of

IOTHREAD = Consumer(tid=4321, comm="IO iothread0", tgid=4300, process="qemu-system-x86")


def _delta(kicks: int, wakes: int, irq_us: dict[int, int]) -> LatencyDelta:
    irq = {slot_of(us * 1000): n for us, n in irq_us.items()}
    return LatencyDelta(
        4300, "pio", 0xC010, 2, IOTHREAD, kicks=kicks, wakes=wakes, coalesced=0,
        answered=sum(irq_us.values()), stale=0, vector=0x41, hists={"kick_to_irq": irq},
    )  # fmt: skip


def test_latency_sums_a_minutes_ticks_and_reads_percentiles(client, db: Session, make_vm) -> None:
    vm = make_vm("qemu", alive=True)
    now = utcnow()
    minute = minute_of(now)
    earlier = minute - timedelta(minutes=1)
    conn = db.connection()
    add_deltas(conn, vm.id, [_delta(100, 60, {10: 90, 200: 10})], earlier)
    add_deltas(conn, vm.id, [_delta(50, 50, {10: 40})], minute)
    add_deltas(conn, vm.id, [_delta(50, 40, {10: 50, 200: 10})], minute)  # same minute: adds
    db.commit()

    body = client.get(f"/api/vms/{vm.id}/latency", params={"since": "-5m"}).json()
    (door,) = body["doorbells"]
    assert (door["space"], door["addr"], door["len"]) == ("pio", 0xC010, 2)
    assert door["consumer"] == {"tid": 4321, "comm": "IO iothread0", "process": "qemu-system-x86"}
    assert door["kicks"] == 200 and door["wakes"] == 150 and door["suppressed"] == 50
    assert door["answered"] == 200 and door["vector"] == 0x41
    assert len(door["minutes"]) == 2 and door["minutes"][1]["kicks"] == 100
    irq = door["stages"]["kick_to_irq"]
    assert irq["count"] == 200  # 180 at 10 us, 20 at 200 us
    assert abs(irq["p50_us"] - 10) <= 10 / 8 and abs(irq["p99_us"] - 200) <= 200 / 8
    assert door["stages"]["kick_to_run"] == {"count": 0, "p50_us": None, "p99_us": None}
    assert door["kicks_hz"] > 0


def test_latency_of_an_unknown_vm_is_404(client) -> None:
    assert client.get("/api/vms/999999/latency").status_code == 404


def test_a_bad_window_is_422_naming_the_rule(client, make_vm) -> None:
    vm = make_vm("x")
    answer = client.get(f"/api/vms/{vm.id}/latency", params={"since": "yesterday-ish"})
    assert answer.status_code == 422


def test_metrics_has_the_stages_as_prometheus_histograms(client, db: Session, make_vm) -> None:
    vm = make_vm("qemu", alive=True)
    add_deltas(db.connection(), vm.id, [_delta(100, 60, {10: 90, 200: 10})], utcnow())
    db.commit()
    text = client.get("/metrics").text
    want = {"vm": "qemu", "space": "pio", "addr": "0xc010", "consumer": "IO iothread0"}
    want["stage"] = "kick_to_irq"
    buckets, count = {}, None
    for line in text.splitlines():
        if not line.startswith("iosignal_doorbell_latency_seconds"):
            continue
        name, rest = line.split("{", 1)
        labels = dict(kv.split("=", 1) for kv in rest.rsplit("}", 1)[0].split(","))
        labels = {k: v.strip('"') for k, v in labels.items()}
        if {k: labels.get(k) for k in want} != want:
            continue
        if name.endswith("_bucket"):
            buckets[labels["le"]] = float(line.split()[-1])
        elif name.endswith("_count"):
            count = float(line.split()[-1])
    # 10 us lies under 16.384 us, 200 us under 262.144 us: cumulative counts
    assert buckets["8.192e-06"] == 0 and buckets["1.6384e-05"] == 90
    assert buckets["0.000262144"] == 100 and buckets["+Inf"] == 100 and count == 100
