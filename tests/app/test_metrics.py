"""/metrics: Prometheus text built from the database on each scrape."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from support import exit_row

from contract.models import Ioeventfd, utcnow


def scrape(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_counters_and_liveness(client, make_vm, db):
    up = make_vm("up", alive=True)
    make_vm("down")
    reg = Ioeventfd(
        vm_id=up.id,
        space="mmio",
        addr=0xD0000000,
        len=4,
        state="active",
        label="db",
        signals_total=1234,
    )
    db.add(reg)
    db.add(Ioeventfd(vm_id=up.id, space="pio", addr=1, len=1, state="removed", signals_total=5))
    now = utcnow().replace(microsecond=0)
    up.rolled_up_until = now - timedelta(minutes=1)
    db.add(exit_row(up.id, now - timedelta(minutes=3), 100, rollup=True))
    db.add(exit_row(up.id, now - timedelta(minutes=2), 100))  # rolled up
    db.add(exit_row(up.id, now - timedelta(seconds=5), 7))
    db.commit()
    metrics = scrape(client)
    assert metrics["iosignal_worker_up"] == {(("vm", "up"),): 1.0, (("vm", "down"),): 0.0}
    labels = (
        ("addr", "0xd0000000"),
        ("id", str(reg.id)),
        ("label", "db"),
        ("len", "4"),
        ("space", "mmio"),
        ("vm", "up"),
    )
    assert metrics["iosignal_signals_total"] == {labels: 1234.0}  # removed ones are gone
    exits = (("addr", "0x6000"), ("len", "4"), ("space", "pio"), ("vm", "up"))
    assert metrics["iosignal_exits_total"] == {exits: 107.0}
    reg.signals_total = 2000
    db.commit()
    assert scrape(client)["iosignal_signals_total"][labels] == 2000.0
