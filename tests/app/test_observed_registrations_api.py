"""An observed VM's registrations and the diagnosis per doorbell, on SQLite and PostgreSQL: ticks
with the VMM's KVM_IOEVENTFD calls and the values of exiting writes are written by the observer's
own writer, then read through /ioeventfds, /exits, /hosts and /annotations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contract.db import get_engine
from contract.models import BenchmarkResult, BenchmarkRun, utcnow
from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, ExitValue, Registration, Tick
from observer.writer import ObservedWriter

HOST = "testhost"
QEMU = VmProcess(VmKey(4343, 778), utcnow() - timedelta(hours=1), "qemu-system-x86", "qemu", 1, ())
DOORBELL = ("pio", 0x510, 4)


def ioeventfd(at, datamatch=0x1, deassign=False, errno=None, len_=4) -> Registration:
    return Registration(
        QEMU.key, at, "ioeventfd", deassign, "pio", 0x510, len_, datamatch, 12, None, 1, errno
    )


class Vmm:
    """A VMM as the observer sees it: its calls, then a guest ringing one doorbell, every
    write exiting to userspace with `value`."""

    def __init__(self) -> None:
        self.started = utcnow() - timedelta(minutes=10)
        self.writer = ObservedWriter(get_engine(), HOST, started_at=self.started)

    def run(self, calls, addr=DOORBELL, value=0x0, writes=100, ticks=3) -> None:
        now = utcnow()
        for i, ago in enumerate(range(ticks, 0, -1)):
            at = now - timedelta(seconds=ago)
            sample = AddressSample(QEMU.key, *addr, writes, writes, 0, 2)
            values = [ExitValue(QEMU.key, *addr, value, writes)]
            tick_calls = [c._replace(at=at) for c in calls] if i == 0 else []
            tick = Tick(at, 1.0, {QEMU.key: QEMU}, [], [sample], {}, {}, values, tick_calls)
            self.writer.put(tick)
        assert self.writer.flush()


def vm_id(client) -> int:
    [vm] = client.get("/api/vms", params={"kind": "observed"}).json()
    return vm["id"]


def exit_row(client, addr=DOORBELL) -> dict:
    rows = client.get(f"/api/vms/{vm_id(client)}/exits", params={"since": "-1m"}).json()
    return {(r["space"], r["addr"], r["len"]): r for r in rows}[addr]


def test_a_datamatch_the_guest_never_writes_is_registered_but_exits(client):
    vmm = Vmm()
    vmm.run([ioeventfd(None)])
    row = exit_row(client)
    assert row["registered"] is True and row["exits"] == 300
    assert row["read_exits"] == 6 and row["read_exits_hz"] == pytest.approx(2.0)
    diagnosis = row["diagnosis"]
    assert diagnosis["kind"] == "registered_but_exits" and diagnosis["reason"] == "datamatch"
    assert diagnosis["text"] == "registered but exits: datamatch 0x1, guest wrote 0x0"
    [reg] = client.get(f"/api/vms/{vm_id(client)}/ioeventfds").json()
    assert (reg["source"], reg["kind"], reg["state"], reg["errno"]) == (
        "observed",
        "ioeventfd",
        "active",
        None,
    )
    assert (reg["space"], reg["addr"], reg["len"], reg["datamatch"], reg["eventfd"]) == (
        "pio",
        0x510,
        4,
        1,
        12,
    )
    assert reg["since"] is not None and reg["known_since"] == vmm.started.isoformat().replace(
        "+00:00", "Z"
    )


def test_a_registration_of_another_width_is_registered_but_exits(client):
    Vmm().run([ioeventfd(None, datamatch=None)], addr=("pio", 0x510, 2))
    row = exit_row(client, ("pio", 0x510, 2))
    assert row["registered"] is False  # a len 4 registration never takes a 2-byte write
    assert row["diagnosis"]["reason"] == "width"
    assert row["diagnosis"]["text"] == "registered but exits: registered len 4, guest writes len 2"


def test_a_deassigned_registration_no_longer_covers_and_the_doorbell_is_hot(client):
    Vmm().run([ioeventfd(None, datamatch=None), ioeventfd(None, datamatch=None, deassign=True)])
    row = exit_row(client)
    assert row["registered"] is False and row["diagnosis"]["kind"] == "hot_unregistered"
    vm = vm_id(client)
    assert client.get(f"/api/vms/{vm}/ioeventfds").json() == []  # removed ones left out
    [gone] = client.get(f"/api/vms/{vm}/ioeventfds", params={"state": "removed"}).json()
    assert gone["state"] == "removed" and gone["deassigned_at"] is not None
    notes = client.get("/api/annotations", params={"vm_id": vm, "since": "-1h"}).json()
    texts = sorted(a["text"] for a in notes if a["id"].startswith("obsreg:"))
    assert texts == [
        "observed ioeventfd assigned: pio 0x510 len 4 datamatch any, eventfd 12",
        "observed ioeventfd deassigned: pio 0x510 len 4 datamatch any, eventfd 12",
    ]


def test_a_refused_assign_is_listed_with_its_errno_and_never_registered(client):
    Vmm().run([ioeventfd(None, errno="EEXIST")])
    [reg] = client.get(f"/api/vms/{vm_id(client)}/ioeventfds").json()
    assert (reg["state"], reg["errno"], reg["since"]) == ("failed", "EEXIST", None)
    row = exit_row(client)
    assert row["registered"] is False and row["diagnosis"]["kind"] == "hot_unregistered"


def test_hot_and_unregistered_says_there_is_no_bench_on_this_host(client):
    Vmm().run([])
    diagnosis = exit_row(client)["diagnosis"]
    assert diagnosis["kind"] == "hot_unregistered" and diagnosis["vcpu_share"] is None
    assert "no bench run on testhost" in diagnosis["text"]


def test_hot_and_unregistered_prices_the_saving_with_this_hosts_bench(client, db):
    figures = dict(writes=1000, iops=1.0, rtt_us_min=1.0, rtt_us_max=1.0)
    other = BenchmarkRun(writes=1000, repeat=1, host="elsewhere", state="done")
    run = BenchmarkRun(writes=1000, repeat=1, host=HOST, state="done")
    other.results = [
        BenchmarkResult(path="userspace-pio", rtt_us=50.0, **figures),
        BenchmarkResult(path="ioeventfd-pio", rtt_us=1.0, **figures),
    ]
    run.results = [
        BenchmarkResult(path="userspace-pio", rtt_us=10.0, **figures),
        BenchmarkResult(path="ioeventfd-pio", rtt_us=2.0, **figures),
    ]
    db.add_all([run, other])
    db.commit()
    Vmm().run([])
    diagnosis = exit_row(client)["diagnosis"]
    # 100 exits/s x (10 - 2) us = 800 us a second: 0.08% of a vCPU
    assert diagnosis["vcpu_share"] == pytest.approx(0.0008)
    assert (diagnosis["bench_run"], diagnosis["bench_host"]) == (run.id, HOST)
    assert diagnosis["text"].startswith("hot and unregistered: an ioeventfd would save 0.08% of")
    assert diagnosis["text"].endswith(f"from bench run {run.id} on {HOST})")


def test_an_address_the_guest_only_reads_is_a_row_of_its_read_exits_after_the_doorbells(client):
    vmm = Vmm()
    isr = ("pio", 0xC013, 1)  # a virtio ISR the VMM serves: read after each kick, never written
    now = utcnow()
    for ago in (2, 1):
        samples = [
            AddressSample(QEMU.key, *DOORBELL, 10, 0, 0),
            AddressSample(QEMU.key, *isr, 0, 0, 40, read_exits=40),
        ]
        tick = Tick(now - timedelta(seconds=ago), 1.0, {QEMU.key: QEMU}, [], samples, {}, {})
        vmm.writer.put(tick)
    assert vmm.writer.flush()
    rows = client.get(f"/api/vms/{vm_id(client)}/exits", params={"since": "-1m"}).json()
    assert [(r["addr"], r["writes"], r["read_exits"]) for r in rows] == [
        (0x510, 20, None),
        (0xC013, 0, 80),
    ]
    read_only = rows[1]
    assert (read_only["exits"], read_only["in_kernel_share"], read_only["diagnosis"]) == (
        0,
        None,
        None,
    )
    assert read_only["read_exits_hz"] > 0


def test_the_host_view_counts_each_vms_diagnoses_and_shows_the_first(client):
    Vmm().run([ioeventfd(None)])
    [vm] = client.get("/api/hosts", params={"since": "-1m", "host": HOST}).json()["vms"]
    assert vm["diagnoses"] == 1
    top = vm["top_diagnosis"]
    assert (top["addr"], top["diagnosis"]["reason"]) == (0x510, "datamatch")


def test_without_an_observer_row_registrations_stay_unknown(client, db):
    from contract.models import Observer

    Vmm().run([])
    db.query(Observer).delete()
    db.commit()
    row = exit_row(client)
    assert row["registered"] is None and row["diagnosis"] is None
    assert (
        client.post(
            f"/api/vms/{vm_id(client)}/ioeventfds", json={"space": "pio", "addr": 0x510, "len": 4}
        ).json()["errno"]
        == "EPERM"
    )
