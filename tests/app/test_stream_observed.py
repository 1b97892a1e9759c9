"""The observer's part of an owned VM's stream, on SQLite and PostgreSQL, with rows written by the
observer's own writer: a row committed after a later worker tick was streamed still reaches the
live stream (by commit order), the observer's mark on the VM row, and a VM exiting on more
addresses than a tick's top ten listing both sides' counts for every address it lists."""

from __future__ import annotations

from datetime import timedelta

import httpx
from support import add_exit
from test_observed_api import NOTIFY, Observer
from test_stream import Events

from app.api.stream import ticks as stream_ticks
from app.api.stream.observed import OBSERVER_GRACE, caught_up
from contract.models import utcnow
from contract.timeparse import epoch_ms
from observer.discovery import VmKey, VmProcess


def owned_vm(db, make_vm):
    """An owned VM whose worker process the observer will see (by host and pid)."""
    vm = make_vm("vm0", alive=True)
    vm.pid = 5151
    db.commit()
    started = vm.started_at - timedelta(seconds=1)
    return vm, VmProcess(VmKey(5151, 1), started, "iosignal", "", 1, ())


def test_a_row_committed_after_a_later_tick_was_streamed_comes_with_the_next_tick(
    live_server, db, make_vm
):
    vm, worker = owned_vm(db, make_vm)
    url = f"{live_server}/api/stream"
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", url, params={"vm_id": vm.id}) as response,
    ):
        events = Events(response)
        now = utcnow()
        first, second = now - timedelta(seconds=4), now - timedelta(seconds=3)
        add_exit(db, vm.id, first, 1, addr=0x7000, length=1)
        db.commit()
        assert events.next_rates()["data"]["observed"] == []  # `first`: no observer row yet
        # the observer's tick taken before `first` commits only now, after `first` went out
        Observer().tick(first - timedelta(milliseconds=500), {NOTIFY: (300, 0)}, vm=worker)
        add_exit(db, vm.id, second, 2, addr=0x7000, length=1)
        db.commit()
        event = events.next_rates()
    assert event["id"] == str(epoch_ms(second))
    [notify] = event["data"]["observed"]  # sent with the next tick, not lost
    assert (notify["writes"], notify["in_kernel"]) == (300, 300)


def test_the_observer_marks_every_vm_it_sees_and_the_api_shows_it(client, db, make_vm):
    vm, worker = owned_vm(db, make_vm)
    assert client.get(f"/api/vms/{vm.id}").json()["observer_seen_at"] is None
    at = utcnow() - timedelta(seconds=1)
    Observer().tick(at, {}, vm=worker)  # an idle VM: no samples, but the observer saw it
    body = client.get(f"/api/vms/{vm.id}").json()
    assert body["observer_seen_at"] is not None and 1 <= body["observer_age_s"] < 60
    assert body["heartbeat_at"] == client.get(f"/api/vms/{vm.id}").json()["heartbeat_at"]


def test_live_ticks_wait_for_the_observer_only_within_the_grace():
    now = utcnow()
    ticks = [now - timedelta(seconds=s) for s in (1.0, 0.5, 0.0)]
    seen = now - timedelta(seconds=0.7)
    assert caught_up(ticks, seen, now) == ticks[:1]  # it is behind by 0.7 s: hold the rest
    assert caught_up(ticks, None, now) == ticks  # no observer: nothing to wait for
    lagging = now - OBSERVER_GRACE - timedelta(seconds=0.1)
    assert caught_up(ticks, lagging, now) == ticks  # too far behind: its rows come later
    stopped = ticks[-1] - timedelta(seconds=0.5)
    assert caught_up(ticks, stopped, now + OBSERVER_GRACE) == ticks  # it stopped


def exiting(n: int) -> list[tuple[str, int, int]]:
    return [("pio", 0x6100 + i, 1) for i in range(n)]


def test_every_exiting_address_a_tick_lists_has_both_sides_counts(db, make_vm):
    vm, worker = owned_vm(db, make_vm)
    when = utcnow() - timedelta(seconds=1)
    for many in (14, 30):
        when += timedelta(milliseconds=100)
        addrs = exiting(many)
        counts = {a: (100 + i, 100 + i) for i, a in enumerate(addrs)}
        Observer().tick(when - timedelta(milliseconds=50), counts, vm=worker)
        for a, (_, userspace) in counts.items():
            add_exit(db, vm.id, when, userspace, addr=a[1], length=1)
        db.commit()
        [event] = stream_ticks.ticks_after(db, vm.id, when - timedelta(milliseconds=100))
        tick = event["data"]
        worker_side = {(e["space"], e["addr"], e["len"]): e["exits"] for e in tick["exits"]}
        observer_side = {
            (o["space"], o["addr"], o["len"]): o["userspace"] for o in tick["observed"]
        }
        assert worker_side == observer_side  # the same addresses, the same counts
        if many == 14:  # more than the ten busiest: every one of them
            assert set(worker_side) == set(addrs)
        else:  # more than the observer's 24: its busiest, each with the worker's count
            assert len(worker_side) == 24
            assert set(worker_side) == set(addrs[-24:])
