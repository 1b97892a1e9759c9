"""Registrations without a worker: validation (422), collisions (409 EEXIST), 202/404 paths."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contract.models import Ioeventfd

PIO = {"space": "pio", "addr": 0x6000, "len": 4}


def post(client, vm_id, body):
    return client.post(f"/api/vms/{vm_id}/ioeventfds", json=body)


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"space": "pio", "addr": 0x10, "len": 3}, "len must be one of 0, 1, 2, 4, 8"),
        ({"space": "mmio", "addr": 0x1000, "len": 0, "datamatch": 1}, "len 0"),
        ({"space": "pio", "addr": 0x10000, "len": 1}, "PIO addr must be at most 0xffff"),
        ({"space": "pio", "addr": 0x10, "len": 8}, "PIO len 8 is impossible"),
        ({"space": "pio", "addr": 0x10, "len": 1, "datamatch": 0x100}, "wider than len 1"),
        ({"space": "mmio", "addr": "0xffffffffffffffff", "len": 8}, "must not wrap"),
        ({"space": "mmio", "addr": -1, "len": 4}, "addr must be between 0 and"),
        ({"space": "mmio", "addr": "0xzz", "len": 4}, 'addr must be an integer or a "0x..."'),
        ({"space": "isa", "addr": 1, "len": 4}, "space"),
    ],
)
def test_each_rule_is_a_422_naming_it(client, make_vm, db, body, rule):
    vm = make_vm()
    response = post(client, vm.id, body)
    assert response.status_code == 422, response.text
    assert rule in response.json()["detail"]
    assert response.json()["errno"] == "EINVAL"
    assert db.scalar(select(Ioeventfd.id)) is None  # nothing stored


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"space": "pio", "addr": 0xF4, "len": 1}, "PIO port 0xf4 is the guest's pass-done port"),
        ({"space": "mmio", "addr": 0x1000, "len": 4}, "MMIO addr 0x1000 is inside guest RAM"),
        ({"space": "mmio", "addr": 0x300000, "len": 4}, "inside guest RAM [0, 0x400000)"),
    ],
)
def test_the_guests_own_rules_are_a_422_from_the_app(client, make_vm, db, body, rule):
    """The app answers contract.rules.guest_problem itself, with the VM's reported RAM size:
    the worker would refuse by the same rule, so nothing is stored or sent there."""
    vm = make_vm(alive=True)
    vm.mem_size = 0x400000
    db.commit()
    response = post(client, vm.id, body)
    assert response.status_code == 422, response.text
    assert rule in response.json()["detail"] and response.json()["errno"] == "EINVAL"
    assert db.scalar(select(Ioeventfd.id)) is None  # never stored: the worker is not asked


def test_worker_away_gives_202_pending_and_hex_addr_comes_back_as_int(client, make_vm):
    vm = make_vm(alive=False)
    response = post(client, vm.id, {"space": "mmio", "addr": "0xd0000000", "len": 4, "label": "db"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "pending" and body["addr"] == 0xD0000000 and body["label"] == "db"
    assert response.headers["location"] == f"/api/vms/{vm.id}/ioeventfds/{body['id']}"
    listed = client.get(f"/api/vms/{vm.id}/ioeventfds").json()
    assert [r["id"] for r in listed] == [body["id"]]
    assert client.get(f"/api/vms/{vm.id}/ioeventfds/{body['id']}").json() == body


@pytest.mark.parametrize(
    "body",
    [
        {"space": "pio", "addr": 0xFFFF, "len": 4, "datamatch": 0xFFFF_FFFF},  # kernel takes it
        {"space": "mmio", "addr": (1 << 64) - 8, "len": 8, "datamatch": (1 << 64) - 1},
    ],
)
def test_the_edges_the_kernel_accepts_are_accepted(client, make_vm, body):
    response = post(client, make_vm().id, body)
    assert response.status_code == 202, response.text
    assert response.json()["datamatch"] == body["datamatch"]


def test_alive_worker_that_does_not_answer_gives_202_after_the_timeout(client, make_vm):
    vm = make_vm(alive=True)
    response = post(client, vm.id, PIO)
    assert response.status_code == 202 and response.json()["state"] == "pending"


@pytest.mark.parametrize(
    ("first", "second", "clash"),
    [
        (PIO, PIO, True),
        (PIO, {**PIO, "datamatch": 7}, True),  # wildcard on one side
        ({**PIO, "datamatch": 7}, {**PIO, "datamatch": 7}, True),
        ({**PIO, "datamatch": 7}, {**PIO, "datamatch": 8}, False),
        ({**PIO, "len": 0}, {**PIO, "len": 2}, True),  # len 0 on one side
        ({**PIO, "len": 2}, PIO, False),  # different widths
        # (the other bus at the same address is contract.rules.collides' case: MMIO at a port's
        # address lies inside any guest's RAM, so the app refuses it before any collision)
        (PIO, {**PIO, "addr": 0x6004}, False),
    ],
)
def test_collisions_follow_the_kernel_rule(client, make_vm, first, second, clash):
    vm = make_vm()
    assert post(client, vm.id, first).status_code == 202
    response = post(client, vm.id, second)
    if clash:
        assert response.status_code == 409, response.text
        assert response.json()["errno"] == "EEXIST"
        assert "EEXIST" in response.json()["detail"]
    else:
        assert response.status_code == 202, response.text


def test_failed_and_removed_registrations_do_not_collide(client, make_vm, db):
    vm = make_vm()
    db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=4, state="failed", errno="EEXIST"))
    db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=4, state="removed"))
    db.commit()
    assert post(client, vm.id, PIO).status_code == 202


def test_delete_paths(client, make_vm, db):
    vm = make_vm()
    pending = post(client, vm.id, PIO).json()
    # Worker away: removal is asked for and answered 202.
    response = client.delete(f"/api/vms/{vm.id}/ioeventfds/{pending['id']}")
    assert response.status_code == 202 and response.json()["state"] == "removing"
    failed = Ioeventfd(vm_id=vm.id, space="pio", addr=1, len=1, state="failed", errno="EINVAL")
    db.add(failed)
    db.commit()
    # A failed one was never in the kernel: removed at once.
    assert client.delete(f"/api/vms/{vm.id}/ioeventfds/{failed.id}").status_code == 204
    db.expire_all()
    assert db.get(Ioeventfd, failed.id).state == "removed"
    assert client.delete(f"/api/vms/{vm.id}/ioeventfds/{failed.id}").status_code == 204
    assert client.delete(f"/api/vms/{vm.id}/ioeventfds/9999").status_code == 404
    other = make_vm("vm1")
    assert client.delete(f"/api/vms/{other.id}/ioeventfds/{pending['id']}").status_code == 404


def test_state_filter_and_unknown_vm(client, make_vm, db):
    vm = make_vm()
    post(client, vm.id, PIO)
    db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=2, len=1, state="removed"))
    db.commit()
    url = f"/api/vms/{vm.id}/ioeventfds"
    assert [r["state"] for r in client.get(url).json()] == ["pending"]
    assert [r["state"] for r in client.get(url, params={"state": "removed"}).json()] == ["removed"]
    assert len(client.get(url, params=[("state", "removed"), ("state", "pending")]).json()) == 2
    assert client.get(url, params={"state": "bogus"}).status_code == 422
    assert client.get("/api/vms/999/ioeventfds").status_code == 404
    assert client.post("/api/vms/999/ioeventfds", json=PIO).status_code == 404
    assert client.get(f"/api/vms/{vm.id}/ioeventfds/999").status_code == 404
    assert client.get("/api/vms/999").status_code == 404
    assert client.get("/api/vms/99999999999").status_code == 422
    assert client.get(f"/api/vms/{vm.id}").json()["alive"] is False


@pytest.mark.parametrize(
    ("errno_name", "status"), [("EEXIST", 409), ("EINVAL", 422), ("ENOSPC", 422)]
)
def test_the_kernels_refusal_is_answered_with_its_errno(client, make_vm, errno_name, status):
    """The verdict as the worker writes it (failed + errno + message) becomes the answer."""
    import threading
    import time

    from contract.db import get_sessionmaker

    vm = make_vm(alive=True)
    done = threading.Event()

    def worker_verdict() -> None:  # what worker/store.mark_failed writes, nothing more
        with get_sessionmaker()() as db:
            while not done.is_set():
                row = db.scalars(select(Ioeventfd).where(Ioeventfd.state == "pending")).first()
                if row is not None:
                    row.state, row.errno, row.error = "failed", errno_name, "refused by KVM"
                    db.commit()
                    return
                db.rollback()
                time.sleep(0.01)

    thread = threading.Thread(target=worker_verdict)
    thread.start()
    try:
        response = post(client, vm.id, PIO)
    finally:
        done.set()
        thread.join(5)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errno"] == errno_name and "refused by KVM" in body["detail"]
    assert client.get(f"/api/vms/{vm.id}/ioeventfds/{body['id']}").json()["state"] == "failed"
