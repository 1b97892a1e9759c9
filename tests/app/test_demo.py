"""The demo workload through the API: started on request, labelled, refused twice or on a clash,
and removed by undoing exactly what it added (a real worker runs it in test_with_worker.py)."""

from __future__ import annotations

from sqlalchemy import select

from app.core.security import create_token
from contract.models import Ioeventfd, Workload

BELL = {"space": "pio", "addr": 0x7000, "len": 2, "value": 1, "rate_hz": 10}
DEMO_BELLS = [
    ("pio", 0x6000, 2, 1000.0),
    ("pio", 0x6004, 4, 2000.0),
    ("mmio", 0xD0000000, 4, 5000.0),
]


def bells(workload: dict) -> list[tuple]:
    return [(d["space"], d["addr"], d["len"], d["rate_hz"]) for d in workload["doorbells"]]


def test_start_then_remove_restores_the_previous_workload(client, db, make_vm):
    vm = make_vm(alive=False)
    url = f"/api/vms/{vm.id}/workload"
    assert client.put(url, json={"doorbells": [BELL]}).status_code == 200
    assert client.get("/api/demo").json()["active"] is False  # never on its own
    started = client.post("/api/demo", json={"vm_id": vm.id})
    assert started.status_code == 201, started.text
    demo = started.json()
    assert demo["active"] is True and demo["vm_id"] == vm.id and demo["workload_version"] == 2
    workload = client.get(url).json()
    assert workload["demo"] is True and bells(workload) == DEMO_BELLS
    reg = client.get(f"/api/vms/{vm.id}/ioeventfds/{demo['ioeventfd_id']}").json()
    assert reg["label"] == "demo: registered doorbell" and reg["state"] == "pending"
    assert (reg["space"], reg["addr"], reg["len"]) == ("pio", 0x6000, 2)
    assert client.get("/api/demo").json() == demo
    again = client.post("/api/demo", json={"vm_id": vm.id})
    assert again.status_code == 409 and again.json()["errno"] == "EBUSY"
    assert client.delete("/api/demo").status_code == 204
    assert client.get("/api/demo").json() == {
        "active": False,
        "vm_id": None,
        "ioeventfd_id": None,
        "workload_version": None,
        "started_at": None,
    }
    restored = client.get(url).json()
    assert restored["version"] == 3 and restored["demo"] is False
    assert bells(restored) == [("pio", 0x7000, 2, 10.0)]
    db.expire_all()
    # the worker is away: removal waits for it, as any registration's does
    assert db.get(Ioeventfd, demo["ioeventfd_id"]).state == "removing"
    assert client.delete("/api/demo").status_code == 204  # nothing left to do


def test_removal_leaves_a_workload_changed_since_alone(client, db, make_vm):
    vm = make_vm()
    first = client.post("/api/demo", json={"vm_id": vm.id}).json()
    url = f"/api/vms/{vm.id}/workload"
    client.put(url, json={"doorbells": [BELL]})  # someone took the guest over meanwhile
    assert client.delete("/api/demo").status_code == 204
    kept = client.get(url).json()
    assert kept["version"] == 2 and bells(kept) == [("pio", 0x7000, 2, 10.0)]
    # until the worker deassigns it, the old demo doorbell still holds its address
    assert client.post("/api/demo", json={"vm_id": vm.id}).json()["errno"] == "EEXIST"
    db.get(Ioeventfd, first["ioeventfd_id"]).state = "removed"  # as the worker marks it
    db.commit()
    assert client.post("/api/demo", json={"vm_id": vm.id}).status_code == 201
    assert client.delete("/api/demo").status_code == 204
    assert bells(client.get(url).json()) == [("pio", 0x7000, 2, 10.0)]
    # without a workload before it, removal leaves the guest silent
    fresh = make_vm("fresh")
    assert client.post("/api/demo", json={"vm_id": fresh.id}).status_code == 201
    assert client.delete("/api/demo").status_code == 204
    silent = client.get(f"/api/vms/{fresh.id}/workload").json()
    assert silent["version"] == 2 and silent["doorbells"] == []


def test_refusals_store_nothing(client, db, make_vm):
    vm = make_vm()
    unknown = client.post("/api/demo", json={"vm_id": 999})
    assert unknown.status_code == 422 and unknown.json()["detail"] == "vm_id 999 does not exist"
    clash = {"space": "pio", "addr": 0x6000, "len": 0}
    assert client.post(f"/api/vms/{vm.id}/ioeventfds", json=clash).status_code == 202
    refused = client.post("/api/demo", json={"vm_id": vm.id})
    assert refused.status_code == 409 and refused.json()["errno"] == "EEXIST"
    assert db.scalar(select(Workload.id)) is None
    assert client.get("/api/demo").json()["active"] is False
    small = make_vm("small")
    small.mem_size = 0xE0000000  # RAM covering the demo's MMIO doorbell
    db.commit()
    cannot = client.post("/api/demo", json={"vm_id": small.id})
    assert cannot.status_code == 422 and "the demo cannot ring" in cannot.json()["detail"]
    assert client.post("/api/demo", json={}).status_code == 422


def test_viewers_see_the_demo_but_cannot_start_or_stop_it(client, db, make_vm):
    vm = make_vm()
    viewer = {"Authorization": f"Bearer {create_token(db, 'v', 'viewer')}"}
    editor = {"Authorization": f"Bearer {create_token(db, 'e', 'editor')}"}
    denied = client.post("/api/demo", json={"vm_id": vm.id}, headers=viewer)
    assert denied.status_code == 403
    assert client.post("/api/demo", json={"vm_id": vm.id}, headers=editor).status_code == 201
    assert client.get("/api/demo", headers=viewer).json()["active"] is True
    assert client.delete("/api/demo", headers=viewer).status_code == 403
    assert client.get("/api/demo", headers=viewer).json()["active"] is True


def test_two_starts_racing_leave_one_demo(client, db, make_vm, monkeypatch):
    import app.api.demo.lifecycle as demo_module

    first, second = make_vm("first"), make_vm("second")
    assert client.post("/api/demo", json={"vm_id": first.id}).status_code == 201
    # The race: the second start's check read "no demo" before the first one committed.
    real_current, checks = demo_module.current, iter([None])
    monkeypatch.setattr(demo_module, "current", lambda s: next(checks, real_current(s)))
    raced = client.post("/api/demo", json={"vm_id": second.id})
    assert raced.status_code == 409 and raced.json()["errno"] == "EBUSY", raced.text
    assert f"a demo already runs on VM {first.id}" in raced.json()["detail"]
    db.expire_all()
    # nothing of the losing start is left: no workload version, no registration on `second`
    assert db.scalar(select(Workload.id).where(Workload.vm_id == second.id)) is None
    assert db.scalar(select(Ioeventfd.id).where(Ioeventfd.vm_id == second.id)) is None
    assert client.get("/api/demo").json()["vm_id"] == first.id
