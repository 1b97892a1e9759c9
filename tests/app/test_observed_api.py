"""The API of VMs the observer watches, on SQLite and PostgreSQL: ticks are written by the
observer's own writer (observer/writer.py over observer/store.py), then read through the API:
?kind, /exits figures, 409 on every changing route, /metrics, /api/hosts and the stream."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from support import add_exit
from test_metrics import scrape
from test_stream import Events

from contract.db import get_engine
from contract.models import BenchmarkRun, Demo, Ioeventfd, Vm, Workload, utcnow
from contract.timeparse import epoch_ms
from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, Tick
from observer.writer import ObservedWriter

HOST = "testhost"  # make_vm's host
QEMU = VmProcess(
    VmKey(4242, 777), utcnow() - timedelta(hours=1), "qemu-system-x86", "qemu", 2, (9,)
)
NOTIFY, CONSOLE, MIXED = ("pio", 0x6000, 2), ("pio", 0x510, 1), ("mmio", 0xFEB00000, 4)


class Observer:
    """Writes ticks exactly as `iosignal observe` does, for VMs of `host`."""

    def __init__(self, host: str = HOST) -> None:
        self.writer = ObservedWriter(get_engine(), host)

    def tick(self, at, counts: dict, vm: VmProcess = QEMU, ended: bool = False) -> None:
        """One tick: `counts` maps (space, addr, len) to (writes, userspace)."""
        samples = [AddressSample(vm.key, *a, w, u, 0) for a, (w, u) in counts.items()]
        live = {} if ended else {vm.key: vm}
        ended_keys = [vm.key] if ended else []
        self.writer.put(Tick(at, 1.0, live, ended_keys, samples, {vm.key: [100, 101]}, {}))
        assert self.writer.flush()


def observed_vm(db) -> Vm:
    return db.query(Vm).filter(Vm.kind == "observed").one()


@pytest.fixture
def watched(db):
    """An observed QEMU: three 1-second ticks ending 1 s ago."""
    now = utcnow()
    observer = Observer()
    for ago in (3, 2, 1):
        counts = {NOTIFY: (1000, 0), CONSOLE: (100, 100), MIXED: (200, 50)}
        observer.tick(now - timedelta(seconds=ago), counts)
    db.expire_all()
    return observed_vm(db)


def test_vms_lists_both_kinds_and_filters_by_kind(client, make_vm, watched):
    owned = make_vm("vm0")
    every = client.get("/api/vms").json()
    assert [(v["id"], v["kind"]) for v in every] == [(watched.id, "observed"), (owned.id, "owned")]
    [qemu] = client.get("/api/vms", params={"kind": "observed"}).json()
    assert (qemu["pid"], qemu["comm"], qemu["cmdline"], qemu["vcpus"]) == (4242, *QEMU[2:5])
    assert qemu["state"] == "running" and qemu["ended_at"] is None and qemu["alive"]
    assert qemu["vcpu_tids"] == [100, 101]
    assert [v["id"] for v in client.get("/api/vms?kind=owned").json()] == [owned.id]
    bad = client.get("/api/vms", params={"kind": "guest"})
    assert bad.status_code == 422
    assert "kind" in bad.json()["detail"] and "'owned' or 'observed'" in bad.json()["detail"]


def test_exits_of_an_observed_vm_split_writes_into_in_kernel_and_userspace(client, watched):
    rows = client.get(f"/api/vms/{watched.id}/exits", params={"since": "-1m"}).json()
    by_addr = {(r["space"], r["addr"], r["len"]): r for r in rows}
    # busiest exits first: the console (all userspace), then the mixed doorbell, then notify
    assert list(by_addr) == [CONSOLE, MIXED, NOTIFY]
    console, mixed, notify = by_addr[CONSOLE], by_addr[MIXED], by_addr[NOTIFY]
    # three 1 s ticks: the observer watched this VM for 3 s of the minute
    assert notify["writes"] == 3000 and notify["in_kernel"] == 3000 and notify["exits"] == 0
    assert notify["writes_hz"] == pytest.approx(1000.0)
    assert notify["in_kernel_hz"] == pytest.approx(1000.0) and notify["in_kernel_share"] == 1.0
    assert (mixed["writes"], mixed["userspace"], mixed["in_kernel"]) == (600, 150, 450)
    assert mixed["userspace_hz"] == pytest.approx(50.0) and mixed["rate_hz"] == pytest.approx(50.0)
    assert mixed["in_kernel_share"] == pytest.approx(0.75)
    assert console["exits"] == 300 and console["in_kernel_share"] == 0.0
    # the observer saw the VMM register nothing since it started: nothing is registered
    assert all(r["registered"] is False for r in rows)
    csv = client.get(f"/api/vms/{watched.id}/exits", params={"format": "csv"}).text
    assert csv.splitlines()[0].endswith(
        ",writes,userspace,in_kernel,writes_hz,userspace_hz,in_kernel_hz,in_kernel_share"
    )


def test_an_owned_vm_keeps_its_exit_counter_and_gains_the_observer_figures(client, db, make_vm):
    vm = make_vm("vm0", alive=True)
    vm.pid = 5151
    db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=2, state="active"))
    now = utcnow()
    for ago in (2, 1):
        add_exit(db, vm.id, now - timedelta(seconds=ago), 40, addr=0x7000, length=1)
    db.commit()
    # the worker's own process, seen by the observer: its rows go to the owned VM
    worker = VmProcess(VmKey(5151, 1), vm.started_at - timedelta(seconds=1), "iosignal", "", 1, ())
    observer = Observer()
    for ago in (2, 1):
        counts = {NOTIFY: (500, 0), ("pio", 0x7000, 1): (40, 40)}
        observer.tick(now - timedelta(seconds=ago), counts, vm=worker)
    assert db.query(Vm).count() == 1
    rows = client.get(f"/api/vms/{vm.id}/exits", params={"since": "-1m"}).json()
    exiting, registered = rows
    assert (exiting["addr"], exiting["exits"], exiting["registered"]) == (0x7000, 80, False)
    assert exiting["rate_hz"] == pytest.approx(40.0)  # the worker's counter, as before
    assert exiting["userspace"] == 80 and exiting["in_kernel_share"] == 0.0
    assert (registered["addr"], registered["exits"], registered["registered"]) == (0x6000, 0, True)
    assert registered["writes"] == 1000 and registered["in_kernel_share"] == 1.0
    assert registered["writes_hz"] == pytest.approx(500.0)


def test_every_changing_route_refuses_an_observed_vm_with_409_naming_it(client, db, watched):
    path = f"/api/vms/{watched.id}"
    bell = {"space": "pio", "addr": 0x6000, "len": 2}
    doorbell = bell | {"value": 1, "rate_hz": 10}
    answers = [
        client.post(f"{path}/ioeventfds", json=bell),
        client.delete(f"{path}/ioeventfds/1"),
        client.put(f"{path}/workload", json={"doorbells": [doorbell]}),
        client.post("/api/demo", json={"vm_id": watched.id}),
        client.post("/api/benchmarks", json={"vm_id": watched.id, "writes": 1000, "repeat": 1}),
    ]
    for answer in answers:
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["errno"] == "EPERM" and (body["pid"], body["comm"]) == (4242, QEMU.comm)
        assert f"VM {watched.id} is observed, not owned" in body["detail"]
        assert "qemu-system-x86 (pid 4242)" in body["detail"]
        assert "another process's VM" in body["detail"]
    for table in (Ioeventfd, Workload, Demo, BenchmarkRun):
        assert db.query(table).count() == 0, table  # nothing was asked of anyone
    # reading is fine
    assert client.get(f"{path}/ioeventfds").json() == []
    assert client.get(f"{path}/workload").json()["doorbells"] == []


def test_metrics_carry_observed_writes_and_userspace_with_bounded_labels(client, watched):
    metrics = scrape(client)
    writes = metrics["iosignal_observed_writes_total"]
    userspace = metrics["iosignal_observed_userspace_total"]
    labels = (("addr", "0xfeb00000"), ("kind", "observed"), ("space", "mmio"), ("vm", watched.name))
    assert writes[labels] == 600.0 and userspace[labels] == 150.0
    notify = (("addr", "0x6000"), ("kind", "observed"), ("space", "pio"), ("vm", watched.name))
    assert writes[notify] == 3000.0 and userspace[notify] == 0.0
    # a guest writing many addresses: 50 series, the rest summed as "other"
    many = VmProcess(VmKey(99, 1), QEMU.started_at, "fb-writer", "", 1, ())
    counts = {("mmio", 0xA0000 + 4 * i, 4): (1000 - i, i) for i in range(80)}
    Observer().tick(utcnow() - timedelta(seconds=1), counts, vm=many)
    writes = scrape(client)["iosignal_observed_writes_total"]
    mine = {dict(k)["addr"]: v for k, v in writes.items() if dict(k)["vm"].startswith("fb-writer")}
    assert len(mine) == 51 and mine["0xa0000"] == 1000.0
    assert mine["other"] == sum(1000 - i for i in range(50, 80))


def test_hosts_list_every_vm_with_its_busiest_doorbells_and_share(client, make_vm, watched):
    owned = make_vm("vm0", alive=True)
    elsewhere = VmProcess(VmKey(7, 1), QEMU.started_at, "firecracker", "fc", 1, ())
    Observer("hostB").tick(utcnow() - timedelta(seconds=1), {NOTIFY: (10, 10)}, vm=elsewhere)
    body = client.get("/api/hosts").json()
    assert [(h["host"], h["owned"], h["observed"]) for h in body["hosts"]] == [
        ("hostB", 0, 1),
        (HOST, 1, 1),
    ]
    assert (body["total"], body["page"], body["pages"], body["sort"]) == (3, 1, 1, "host")
    b, *mine = body["vms"]  # by host, owned first
    assert (b["host"], b["comm"], b["kind"]) == ("hostB", "firecracker", "observed")
    assert [(v["id"], v["kind"]) for v in mine] == [(owned.id, "owned"), (watched.id, "observed")]
    qemu = mine[1]
    assert (qemu["pid"], qemu["comm"], qemu["state"], qemu["observed"]) == (
        4242,
        QEMU.comm,
        "running",
        True,
    )
    # 3 s of: notify 1000/s all in-kernel, console 100/s all userspace, mixed 200/s, 50 exiting
    assert qemu["writes_hz"] == pytest.approx(1300.0)
    assert qemu["in_kernel_share"] == pytest.approx(1150 / 1300)
    assert [(r["space"], r["addr"]) for r in qemu["busiest"]] == [
        NOTIFY[:2],
        MIXED[:2],
        CONSOLE[:2],
    ]
    assert mine[0]["observed"] is False and mine[0]["in_kernel_share"] is None
    assert client.get("/api/hosts", params={"since": "soon"}).status_code == 422


def test_hosts_leave_out_observed_vms_that_ended_long_ago(client, db, watched):
    Observer().tick(utcnow() - timedelta(hours=2), {}, ended=True)
    db.expire_all()
    assert observed_vm(db).ended_at is not None
    body = client.get("/api/hosts").json()
    assert (body["hosts"], body["vms"], body["total"]) == ([], [], 0)


def test_the_stream_of_an_observed_vm_carries_the_observer_ticks(live_server, db, watched):
    url = f"{live_server}/api/stream"
    observer = Observer()
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", url, params={"vm_id": watched.id}) as response,
    ):
        events = Events(response)
        at = utcnow()
        observer.tick(at, {NOTIFY: (500, 0), MIXED: (100, 40)})
        event = events.next_rates()
        while event["id"] != str(epoch_ms(at)):
            event = events.next_rates()  # the newest tick before connecting may come first
    data = event["data"]
    assert data["registrations"] == []
    assert data["exits"] == [
        {"space": "mmio", "addr": 0xFEB00000, "len": 4, "exits": 40, "rate_hz": 40.0}
        | {"registered": None}
    ]
    notify, mixed = data["observed"]
    assert (notify["addr"], notify["writes"], notify["in_kernel"]) == (0x6000, 500, 500)
    assert notify["writes_hz"] == 500.0 and notify["in_kernel_share"] == 1.0
    assert (mixed["userspace_hz"], mixed["in_kernel_hz"], mixed["in_kernel_share"]) == (
        40.0,
        60.0,
        0.6,
    )


def test_the_stream_of_an_owned_vm_carries_the_observer_rows_between_its_ticks(
    live_server, db, make_vm
):
    vm = make_vm("vm0", alive=True)
    vm.pid = 5151
    db.commit()
    worker = VmProcess(VmKey(5151, 1), vm.started_at - timedelta(seconds=1), "iosignal", "", 1, ())
    url = f"{live_server}/api/stream"
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", url, params={"vm_id": vm.id}) as response,
    ):
        events = Events(response)
        now = utcnow()
        first, second = now - timedelta(seconds=2), now - timedelta(seconds=1)
        add_exit(db, vm.id, first, 1, addr=0x7000, length=1)
        db.commit()
        assert events.next_rates()["id"] == str(epoch_ms(first))
        Observer().tick(second - timedelta(milliseconds=500), {NOTIFY: (300, 0)}, vm=worker)
        add_exit(db, vm.id, second, 2, addr=0x7000, length=1)
        db.commit()
        event = events.next_rates()
    assert event["id"] == str(epoch_ms(second))
    assert [e["exits"] for e in event["data"]["exits"]] == [2]  # the worker's, as before
    [notify] = event["data"]["observed"]  # the observer's, in (first, second]
    assert (notify["writes"], notify["in_kernel"]) == (300, 300)
    assert notify["writes_hz"] == pytest.approx(300.0)
