"""Annotations: notes through REST (author, limits, delete) and markers derived from what the
database records (registrations, workloads, worker starts and stops, benchmark runs)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.api.annotations.sources import registrations
from app.core.security import create_token
from contract.db import get_engine
from contract.models import BenchmarkRun, Ioeventfd, utcnow
from worker import store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def by_id(client, **params) -> dict[str, dict]:
    response = client.get("/api/annotations", params=params)
    assert response.status_code == 200, response.text
    return {a["id"]: a for a in response.json()}


def test_notes_are_added_listed_filtered_and_deleted(client, make_vm):
    vm_a, vm_b = make_vm("a"), make_vm("b")
    html = "<img src=x onerror=alert(1)> upgraded the kernel"
    made = client.post("/api/annotations", json={"text": html})
    assert made.status_code == 201, made.text
    note = made.json()
    assert note["kind"] == "note" and note["text"] == html  # stored and answered as text
    assert note["author"] is None and note["vm_id"] is None and note["time_end"] is None
    assert made.headers["location"] == f"/api/annotations/{note['id']}"
    start = (utcnow() - timedelta(minutes=10)).isoformat()
    end = (utcnow() - timedelta(minutes=5)).isoformat()
    span = client.post(
        "/api/annotations", json={"text": "load test", "time": start, "time_end": end}
    ).json()
    on_b = client.post("/api/annotations", json={"text": "b only", "vm_id": vm_b.id}).json()
    listed = by_id(client, since="-1h")
    assert {note["id"], span["id"], on_b["id"]} <= set(listed)
    assert listed[span["id"]]["time_end"] is not None
    assert set(by_id(client, since="-1h", vm_id=vm_a.id)) >= {note["id"], span["id"]}
    assert on_b["id"] not in by_id(client, since="-1h", vm_id=vm_a.id)  # globals, not b's
    assert span["id"] in by_id(client, since="-7m")  # a span overlapping the range
    assert span["id"] not in by_id(client, since="-1h", until="-11m")
    assert client.delete(f"/api/annotations/{note['id']}").status_code == 204
    assert note["id"] not in by_id(client, since="-1h")
    gone = client.delete(f"/api/annotations/{note['id']}")
    assert gone.status_code == 404 and gone.json()["errno"] == "ENOENT"
    assert client.delete("/api/annotations/note:99999999999").status_code == 404
    assert client.delete("/api/annotations/whatever").status_code == 404
    automatic = client.delete("/api/annotations/reg:1:applied")
    assert automatic.status_code == 422 and "only notes" in automatic.json()["detail"]


def test_bad_notes_are_422_naming_the_rule(client):
    cases = [
        ({"text": ""}, "text"),
        ({"text": "x" * 501}, "text"),
        ({"text": "ok", "vm_id": 42}, "vm_id 42 does not exist"),
        ({"text": "ok", "time": "yesterday"}, "time"),
        (
            {"text": "ok", "time": "2026-01-02T00:00:00Z", "time_end": "2026-01-01T00:00:00Z"},
            "time_end must not be before time",
        ),
        ({"text": "ok", "colour": "red"}, "colour"),
    ]
    for body, rule in cases:
        response = client.post("/api/annotations", json=body)
        assert response.status_code == 422 and rule in response.json()["detail"], body
    assert client.get("/api/annotations", params={"since": "-1h"}).json() == []
    assert client.get("/api/annotations", params={"since": "soon"}).status_code == 422


def test_author_is_the_token_name_and_viewers_get_403(client, db):
    editor = create_token(db, "alice", "editor")
    viewer = create_token(db, "bob", "viewer")
    made = client.post("/api/annotations", json={"text": "hi"}, headers=bearer(editor)).json()
    assert made["author"] == "alice"
    assert (
        client.post("/api/annotations", json={"text": "no"}, headers=bearer(viewer)).status_code
        == 403
    )
    denied = client.delete(f"/api/annotations/{made['id']}", headers=bearer(viewer))
    assert denied.status_code == 403
    listed = client.get("/api/annotations", headers=bearer(viewer)).json()
    assert [a["id"] for a in listed] == [made["id"]]


def test_registration_workload_and_benchmark_markers(client, db, make_vm):
    vm = make_vm(alive=True)
    now = utcnow()
    reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=2, state="removed", label="nic")
    reg.applied_at, reg.removed_at = now - timedelta(minutes=3), now - timedelta(minutes=1)
    bad = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=0, state="failed", errno="EEXIST")
    bad.error = "collides"
    run = BenchmarkRun(vm_id=vm.id, writes=1000, repeat=1, paths=["ioeventfd-pio"], state="done")
    run.started_at, run.finished_at, run.host = now - timedelta(minutes=2), now, "h1"
    db.add_all([reg, bad, run])
    db.commit()
    bell = {"space": "pio", "addr": 0x6004, "len": 4, "value": 1, "rate_hz": 500}
    assert client.put(f"/api/vms/{vm.id}/workload", json={"doorbells": [bell]}).status_code == 200
    found = by_id(client, since="-1h", vm_id=vm.id)
    applied, removed = found[f"reg:{reg.id}:applied"], found[f"reg:{reg.id}:removed"]
    assert applied["kind"] == "registration" and applied["vm_id"] == vm.id
    assert applied["text"] == f"registration {reg.id} applied: pio 0x6000 len 2 datamatch any (nic)"
    assert applied["time"] < removed["time"]
    assert found[f"reg:{bad.id}:failed"]["text"].endswith(": EEXIST collides")
    [workload] = [a for a in found.values() if a["kind"] == "workload"]
    assert workload["text"] == "workload v1: 1 doorbells, 500 writes/s"
    bench = found[f"bench:{run.id}"]
    assert bench["kind"] == "benchmark" and bench["time_end"] is not None
    assert bench["text"] == f"benchmark {run.id} done: 1 paths x 1,000 writes on h1"
    only = client.get("/api/annotations", params={"since": "-1h", "kind": "workload"}).json()
    assert [a["kind"] for a in only] == ["workload"]
    times = [a["time"] for a in client.get("/api/annotations", params={"since": "-1h"}).json()]
    assert times == sorted(times)
    assert by_id(client, since="-1h", vm_id=vm.id + 1) == {}


def test_worker_start_stop_and_a_restart_after_a_crash(client, app_env):
    engine = get_engine()
    info = {"host": "h1", "kernel": "6.1"}
    vm_id = store.claim_vm(engine, "w", info)  # start
    store.worker_event(engine, vm_id, "stop")
    store.claim_vm(engine, "w", info)  # start again after a clean stop
    store.claim_vm(engine, "w", info)  # a start with no stop between: the previous one died
    workers = [a for a in by_id(client, since="-1h").values() if a["kind"] == "worker"]
    workers.sort(key=lambda a: int(a["id"].split(":")[1]))
    texts = [a["text"].split(" (")[0] for a in workers]
    assert texts == ["worker started", "worker stopped", "worker started", "worker restarted"]
    assert {a["vm_id"] for a in workers} == {vm_id} and "pid" in workers[0]["text"]


def test_a_registration_removed_while_the_session_holds_it_keeps_its_time(db, make_vm):
    # The worker removes a registration that the app's session has already loaded: the
    # "removed" marker must carry the time the database holds, not the session's stale None.
    vm = make_vm()
    now = utcnow()
    reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6010, len=2, state="active")
    reg.applied_at = now - timedelta(minutes=2)
    db.add(reg)
    db.commit()
    # Loaded by a query as the "applied" pass does: the session now holds removed_at None.
    assert db.scalars(select(Ioeventfd).where(Ioeventfd.id == reg.id)).one().removed_at is None
    with Session(get_engine()) as worker:
        worker.execute(
            update(Ioeventfd)
            .where(Ioeventfd.id == reg.id)
            .values(state="removed", removed_at=now - timedelta(minutes=1))
        )
        worker.commit()
    found = {a.id: a for a in registrations(db, (now - timedelta(hours=1), now), vm.id)}
    assert found[f"reg:{reg.id}:removed"].time == now - timedelta(minutes=1)
    assert found[f"reg:{reg.id}:applied"].time == now - timedelta(minutes=2)
