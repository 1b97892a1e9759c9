"""Panels of what the observer counted: writes/s and in-kernel share per address, from raw
samples and from rollups before the VM's observer mark, and what a panel says when there is
nothing to read (on SQLite and PostgreSQL, through the API)."""

from __future__ import annotations

from datetime import timedelta

from support import add_observed

from contract.models import utcnow
from contract.timeparse import epoch_ms

DOORBELL = {"space": "pio", "addr": 0x6000, "len": 2}
QUIET = {"space": "mmio", "addr": 0xD0000000, "len": 4}


def sample(db, vm_id, at, writes, userspace, where=DOORBELL):
    add_observed(db, vm_id, **where, writes=writes, userspace=userspace, taken_at=at)


def data(client, panels, since="-1m"):
    response = client.post("/api/panels/data", json={"since": since, "panels": panels})
    assert response.status_code == 200, response.text
    return response.json()["panels"]


def test_writes_and_share_per_tick_from_raw_samples(client, db, make_vm):
    vm = make_vm("watched")
    vm.kind = "observed"
    now = utcnow().replace(microsecond=0)
    # ticks 5..1 s ago; the tick 3 s ago changed nothing at this address, so it has no row
    rows = {5: (1000, 100), 4: (2000, 0), 2: (400, 400), 1: (10, 5)}
    for ago, (writes, userspace) in rows.items():
        sample(db, vm.id, now - timedelta(seconds=ago), writes, userspace)
    sample(db, vm.id, now - timedelta(seconds=1), 7, 7, QUIET)
    db.commit()
    ref = {"vm_id": vm.id} | DOORBELL
    writes, share = data(
        client,
        [{"metric": "writes", "series": [ref]}, {"metric": "in_kernel_share", "series": [ref]}],
    )
    assert writes["unit"] == "writes/s" and share["unit"] == "share of writes"
    (series,) = writes["series"]
    ticks = [epoch_ms(now - timedelta(seconds=ago)) for ago in rows]
    assert series["name"] == "watched: pio 0x6000 len 2" and "missing" not in series
    assert series["t"] == ticks and series["v"] == [1000.0, 2000.0, 400.0, 10.0]
    assert share["series"][0]["t"] == ticks
    assert share["series"][0]["v"] == [0.9, 1.0, 0.0, 0.5]


def test_minute_tier_reads_rollups_before_the_observer_mark_and_raw_after(client, db, make_vm):
    vm = make_vm("long")
    now = utcnow().replace(second=0, microsecond=0)
    mark = now - timedelta(minutes=2)
    vm.observed_rolled_up_until = mark
    for minutes_ago, writes in ((5, 6000), (4, 12000), (3, 1200)):
        add_observed(
            db,
            vm.id,
            **DOORBELL,
            writes=writes,
            userspace=writes // 2,
            minute_at=now - timedelta(minutes=minutes_ago),
        )
    # a raw row before the mark was rolled up already: it must not count twice
    sample(db, vm.id, mark - timedelta(seconds=30), 999_999, 0)
    sample(db, vm.id, mark + timedelta(seconds=10), 600, 0)
    db.commit()
    ref = {"vm_id": vm.id} | DOORBELL
    body = client.post(
        "/api/panels/data",
        json={"since": "-2h", "panels": [{"metric": "writes", "series": [ref]}]},
    ).json()
    assert body["tier"] == "minute" and body["step_s"] == 60.0
    (series,) = body["panels"][0]["series"]
    minute = [epoch_ms(now - timedelta(minutes=m)) for m in (5, 4, 3, 2)]
    assert series["t"] == minute and series["v"] == [100.0, 200.0, 20.0, 10.0]


def test_a_panel_without_refs_shows_the_busiest_observed_addresses(client, db, make_vm):
    vm = make_vm("busy")
    now = utcnow().replace(microsecond=0)
    sample(db, vm.id, now - timedelta(seconds=2), 50, 0)
    sample(db, vm.id, now - timedelta(seconds=2), 900, 900, QUIET)
    db.commit()
    (panel,) = data(client, [{"metric": "writes"}])
    assert [s["ref"] for s in panel["series"]] == [
        {"vm_id": vm.id} | QUIET,
        {"vm_id": vm.id} | DOORBELL,
    ]


def test_nothing_to_read_is_said_not_drawn_as_zero(client, db, make_vm):
    owned = make_vm("never-watched")
    ref = {"vm_id": owned.id} | DOORBELL
    refs = [ref, {"vm_id": 9999} | DOORBELL]
    never, unknown = data(client, [{"metric": "in_kernel_share", "series": refs}])[0]["series"]
    assert never["missing"] == (
        "needs iosignal observe: no observer has watched VM never-watched yet"
    )
    assert unknown["missing"] == "VM 9999 does not exist"
    # once observed, a quiet address is an empty series, not a missing one
    owned.kind = "observed"
    db.commit()
    (quiet,) = data(client, [{"metric": "writes", "series": [ref]}])[0]["series"]
    assert quiet["t"] == [] and "missing" not in quiet
