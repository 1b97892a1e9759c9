"""Rates (raw tier and rollups) and exits, JSON and CSV, from rows written as the worker writes."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from support import add_exit, add_signal

from app.api.samples.window import plan
from contract.models import Ioeventfd, utcnow


@pytest.fixture
def reg(db, make_vm):
    vm = make_vm(alive=True)
    reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=4, state="active")
    db.add(reg)
    db.commit()
    return reg


def test_raw_rates_sum_per_step_and_divide_by_measured_time(client, db, reg):
    now = utcnow().replace(microsecond=0)
    for i in range(1, 11):  # ten 1-second ticks, 100 then 200 signals
        add_signal(
            db,
            ioeventfd_id=reg.id,
            taken_at=now - timedelta(seconds=i),
            signals=100 if i <= 5 else 200,
            interval_s=1.0,
        )
    add_signal(
        db, ioeventfd_id=reg.id, taken_at=now - timedelta(hours=1), signals=9, interval_s=1.0
    )  # outside the range
    db.commit()
    url = f"/api/vms/{reg.vm_id}/ioeventfds/{reg.id}/rates"
    body = client.get(url, params={"since": "-1m"}).json()
    assert body["id"] == reg.id and body["tier"] == "raw" and body["step_s"] == 1.0
    assert sum(p["signals"] for p in body["points"]) == 1500
    assert {p["rate_hz"] for p in body["points"]} == {100.0, 200.0}
    coarse = client.get(url, params={"since": "-1m", "step": 30}).json()
    assert coarse["step_s"] == 30 and sum(p["signals"] for p in coarse["points"]) == 1500
    # rate = signals / measured seconds: the buckets' measured time adds up to the ten ticks
    assert sum(p["signals"] / p["rate_hz"] for p in coarse["points"]) == pytest.approx(10.0)
    assert all(100 <= p["rate_hz"] <= 200 for p in coarse["points"])
    text = client.get(url, params={"since": "-1m", "format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 10 and sum(int(r["signals"]) for r in rows) == 1500


def test_long_ranges_read_rollups_plus_the_raw_tail(client, db, reg):
    now = utcnow().replace(second=0, microsecond=0)
    boundary = now - timedelta(minutes=2)
    for m in range(3, 63):  # an hour of rolled-up minutes before the boundary
        add_signal(
            db,
            ioeventfd_id=reg.id,
            minute_at=now - timedelta(minutes=m),
            signals=600,
            interval_s=60.0,
        )
    add_signal(
        db, ioeventfd_id=reg.id, taken_at=now - timedelta(seconds=30), signals=50, interval_s=1.0
    )
    add_signal(
        db, ioeventfd_id=reg.id, taken_at=now - timedelta(minutes=5), signals=7, interval_s=1.0
    )  # rolled up already: must not count twice
    vm = reg.vm
    vm.rolled_up_until = boundary
    db.commit()
    body = client.get(f"/api/vms/{vm.id}/ioeventfds/{reg.id}/rates", params={"since": "-7d"}).json()
    assert body["tier"] == "minute" and body["step_s"] % 60 == 0
    assert body["step_s"] * 2000 >= 7 * 86400 and len(body["points"]) <= 2000
    assert sum(p["signals"] for p in body["points"]) == 60 * 600 + 50


def test_plan_keeps_points_under_the_limit():
    now = utcnow()
    for span in (timedelta(seconds=10), timedelta(hours=1), timedelta(days=30)):
        window = plan(now - span, now, None, 1.0)
        assert span.total_seconds() / window.step_s <= 2000
    assert plan(now - timedelta(minutes=5), now, None, 1.0).tier == "raw"
    assert plan(now - timedelta(hours=2), now, None, 1.0).tier == "minute"


def test_bad_ranges_are_422(client, reg):
    url = f"/api/vms/{reg.vm_id}/ioeventfds/{reg.id}/rates"
    assert "ISO 8601" in client.get(url, params={"since": "yesterday"}).json()["detail"]
    assert client.get(url, params={"since": "-1m", "until": "-2m"}).status_code == 422
    assert client.get(url, params={"step": 0}).status_code == 422
    assert client.get(f"/api/vms/{reg.vm_id}/ioeventfds/999/rates").status_code == 404


def test_exits_per_address_busiest_first_with_registered_flag(client, db, reg):
    now = utcnow()
    for i in range(1, 4):
        t = now - timedelta(seconds=i)
        add_exit(db, reg.vm_id, t, 10)
        add_exit(db, reg.vm_id, t, 20, space="mmio", addr=0xD0000000)
    add_exit(db, reg.vm_id, now - timedelta(minutes=5), 99, addr=0x7000, length=1)
    db.commit()
    rows = client.get(f"/api/vms/{reg.vm_id}/exits", params={"since": "-1m"}).json()
    assert [(r["space"], r["addr"], r["exits"], r["registered"]) for r in rows] == [
        ("mmio", 0xD0000000, 60, False),
        ("pio", 0x6000, 30, True),
    ]
    # 60 exits in three 1-second ticks: the rate is over the sampled 3 s, not the 1-minute window
    assert rows[0]["rate_hz"] == pytest.approx(20.0)
    text = client.get(f"/api/vms/{reg.vm_id}/exits", params={"since": "-1m", "format": "csv"})
    lines = text.text.splitlines()
    assert lines[0] == "space,addr,len,exits,rate_hz,registered" and len(lines) == 3
    assert client.get("/api/vms/999/exits").status_code == 404


def test_exits_over_days_read_rollups(client, db, reg):
    now = utcnow().replace(second=0, microsecond=0)
    add_exit(db, reg.vm_id, now - timedelta(hours=3), 500, addr=0x7000, length=1, rollup=True)
    add_exit(db, reg.vm_id, now - timedelta(seconds=20), 5, addr=0x7000, length=1)
    reg.vm.rolled_up_until = now - timedelta(minutes=1)
    db.commit()
    rows = client.get(f"/api/vms/{reg.vm_id}/exits", params={"since": "-1d"}).json()
    assert rows == [
        {
            "space": "pio",
            "addr": 0x7000,
            "len": 1,
            "exits": 505,
            "rate_hz": pytest.approx(505 / 86400),
            "registered": False,
        }
        # no observer watched this VM: its figures are null
        | dict.fromkeys(["writes", "userspace", "in_kernel", "writes_hz", "userspace_hz"])
        | dict.fromkeys(["in_kernel_hz", "in_kernel_share", "read_exits", "read_exits_hz"])
        | {"diagnosis": None}  # 0.006 exits/s: not hot
    ]


def test_a_corrupt_stored_tick_is_refused_naming_vm_and_tick_never_a_wrong_rate(client, db, reg):
    from sqlalchemy import update

    from contract.models import Feed, Sample

    now = utcnow().replace(microsecond=0)
    for i in range(1, 4):
        add_signal(db, ioeventfd_id=reg.id, taken_at=now - timedelta(seconds=i), signals=10)
    bad = now - timedelta(seconds=2)
    db.execute(
        update(Sample)
        .where(Sample.vm_id == reg.vm_id, Sample.feed == int(Feed.SIGNALS), Sample.taken_at == bad)
        .values(counts=b"\x01\x00\x01\x01\x00\x00\x00\x0a\x00\x00\x00\x00")  # a wrong checksum
    )
    db.commit()
    response = client.get(
        f"/api/vms/{reg.vm_id}/ioeventfds/{reg.id}/rates", params={"since": "-1m"}
    )
    assert response.status_code == 500
    body = response.json()
    assert body["errno"] == "EBADMSG"
    assert f"VM {reg.vm_id} (signals), tick {bad.isoformat()}" in body["detail"]
    assert "checksum" in body["detail"]
