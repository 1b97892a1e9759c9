"""/metrics: Prometheus text built from the database on each scrape."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from support import add_exit

from app.api.stream.hub import StreamHub
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
    add_exit(db, up.id, now - timedelta(minutes=3), 100, rollup=True)
    add_exit(db, up.id, now - timedelta(minutes=2), 100)  # rolled up
    add_exit(db, up.id, now - timedelta(seconds=5), 7)
    db.commit()
    metrics = scrape(client)
    assert metrics["iosignal_worker_up"] == {(("vm", "up"),): 1.0, (("vm", "down"),): 0.0}
    labels = (
        ("addr", "0xd0000000"),
        ("id", str(reg.id)),
        ("label", "db"),
        ("len", "4"),
        ("space", "mmio"),
        ("state", "active"),
        ("vm", "up"),
    )
    assert metrics["iosignal_signals_total"] == {labels: 1234.0}  # removed ones are gone
    exits = (("addr", "0x6000"), ("len", "4"), ("space", "pio"), ("vm", "up"))
    assert metrics["iosignal_exits_total"] == {exits: 107.0}
    reg.signals_total = 2000
    db.commit()
    assert scrape(client)["iosignal_signals_total"][labels] == 2000.0


def test_every_signal_sample_carries_every_declared_label_including_state(client, make_vm, db):
    """The family declares seven labels; a value passed without its label is silently lost."""
    vm = make_vm("vm", alive=True)
    for state, addr in (("active", 0x10), ("pending", 0x20), ("failed", 0x30)):
        db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=addr, len=2, state=state, signals_total=1))
    db.commit()
    text = client.get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "iosignal_signals"]
    keys = {"vm", "id", "space", "addr", "len", "label", "state"}
    totals = [s for s in family.samples if s.name == "iosignal_signals_total"]
    assert all(set(s.labels) == keys for s in totals)
    assert {s.labels["addr"]: s.labels["state"] for s in totals} == {
        "0x10": "active",
        "0x20": "pending",
        "0x30": "failed",
    }


def test_stream_clients_this_app_process_dropped_are_counted(client, make_vm, db):
    assert scrape(client)["iosignal_stream_clients_dropped_total"] == {(): 0.0}
    vm = make_vm(alive=True)

    async def drop_one_client() -> StreamHub:
        hub = StreamHub(poll_s=3600, max_queue=1)
        await hub.subscribe(vm.id)
        assert hub.task is not None
        hub.task.cancel()  # the test polls by hand
        for second in (1, 2):  # two ticks in one poll: more than the client's queue holds
            add_exit(db, vm.id, utcnow() + timedelta(seconds=second), 1)
        db.commit()
        await hub._poll(vm.id)
        return hub

    client.app.state.stream_hub = asyncio.run(drop_one_client())
    assert scrape(client)["iosignal_stream_clients_dropped_total"] == {(): 1.0}


def test_observed_counters_count_rolled_minutes_once_and_outlive_deleted_rollups(
    client, make_vm, db
):
    """Lifetime writes and userspace exits: each series' rolled totals plus the raw ticks from
    the VM's observer mark; deleting old rollups (retention) leaves the counters as they were."""
    from sqlalchemy import delete
    from support import add_observed

    from contract.models import Rollup

    vm = make_vm("watched")
    vm.kind = "observed"
    now = utcnow().replace(second=0, microsecond=0)
    vm.observed_rolled_up_until = now - timedelta(minutes=1)
    port = {"space": "pio", "addr": 0x510, "len": 2}
    add_observed(db, vm.id, **port, writes=600, userspace=60, minute_at=now - timedelta(minutes=3))
    add_observed(db, vm.id, **port, writes=300, userspace=30, minute_at=now - timedelta(minutes=2))
    # rolled up already (before the mark): not counted again
    add_observed(db, vm.id, **port, writes=99, userspace=9, taken_at=now - timedelta(seconds=90))
    add_observed(db, vm.id, **port, writes=7, userspace=1, taken_at=now - timedelta(seconds=30))
    db.commit()

    def counters() -> tuple[float, float]:
        metrics = scrape(client)
        (writes,) = metrics["iosignal_observed_writes_total"].values()
        (userspace,) = metrics["iosignal_observed_userspace_total"].values()
        return writes, userspace

    assert counters() == (907.0, 91.0)
    db.execute(delete(Rollup).where(Rollup.vm_id == vm.id))  # the rollup window passed
    db.commit()
    assert counters() == (907.0, 91.0)
