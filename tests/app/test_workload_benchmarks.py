"""Workload versions and their rules; benchmark queueing and results as the worker writes them."""

from __future__ import annotations

from sqlalchemy import select

from contract.models import BenchmarkResult, BenchmarkRun, Workload

BELL = {"space": "pio", "addr": "0x6000", "len": 4, "value": 1, "rate_hz": 1000}


def test_workload_versions_and_applied_flag(client, make_vm, db):
    vm = make_vm(alive=True)
    url = f"/api/vms/{vm.id}/workload"
    empty = client.get(url).json()
    assert empty["version"] == 0 and empty["doorbells"] == [] and empty["applied"] is True
    assert empty["limits"]["max_doorbells"] >= 1
    first = client.put(url, json={"doorbells": [BELL]})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["applied"] is False
    assert first.json()["doorbells"][0]["addr"] == 0x6000
    second = client.put(url, json={"doorbells": []}).json()
    assert second["version"] == 2
    vm.workload_version = 2  # the worker applied it
    db.commit()
    current = client.get(url).json()
    assert current["version"] == 2 and current["applied"] is True and current["error"] is None
    client.put(url, json={"doorbells": [BELL]})
    vm.workload_version, vm.error = 3, "workload version 3 refused: too fast"  # as the worker does
    db.commit()
    assert client.get(url).json()["error"] == "workload version 3 refused: too fast"
    assert db.scalar(select(Workload.doorbells).where(Workload.version == 1))[0]["value"] == 1


def test_workload_rules_are_422(client, make_vm):
    vm = make_vm()
    url = f"/api/vms/{vm.id}/workload"
    cases = [
        ({**BELL, "len": 0}, "doorbell len must be one of 1, 2, 4, 8"),
        ({**BELL, "len": 8}, "PIO len 8"),
        ({**BELL, "addr": 0x10000}, "PIO addr must be at most 0xffff"),
        ({**BELL, "len": 1, "value": 256}, "value 0x100 is wider than len 1"),
        ({**BELL, "rate_hz": -1}, "rate_hz must be between 0 and 100000 (got -1)"),
        ({**BELL, "rate_hz": 1e9}, "rate_hz must be between 0 and 100000 (got 1000000000)"),
        ({**BELL, "addr": 0xF4, "len": 1}, "pass-done port"),
        ({**BELL, "space": "mmio", "addr": 0x1000}, "outside guest RAM"),
        ({**BELL, "answered": True, "rate_hz": 20_000}, "answered doorbell's rate_hz"),
        ({**BELL, "answered": "yes"}, "answered"),
        ({**BELL, "addr": 0x20, "len": 1}, "in-kernel interrupt controller"),
    ]
    for bell, rule in cases:
        response = client.put(url, json={"doorbells": [bell]})
        assert response.status_code == 422 and rule in response.json()["detail"], bell
    many = [{**BELL, "rate_hz": 90_000, "addr": 0x6000 + 4 * i} for i in range(3)]
    response = client.put(url, json={"doorbells": many})
    assert response.status_code == 422 and "add up to at most" in response.json()["detail"]
    assert client.get(url).json()["version"] == 0
    assert client.get("/api/vms/999/workload").status_code == 404


def test_a_silent_doorbell_is_kept_at_rate_0(client, make_vm):
    """Rate 0 is contract.rules' floor: the row stays in the workload and the pacer skips it."""
    vm = make_vm()
    url = f"/api/vms/{vm.id}/workload"
    silent = {**BELL, "rate_hz": 0, "answered": True}  # an answered one keeps its device
    response = client.put(url, json={"doorbells": [silent]})
    assert response.status_code == 200, response.text
    assert response.json()["doorbells"][0]["rate_hz"] == 0
    assert response.json()["limits"]["min_doorbell_rate_hz"] == 0


def test_an_answered_doorbell_is_stored_with_its_flag(client, make_vm, db):
    vm = make_vm()
    url = f"/api/vms/{vm.id}/workload"
    answered = {**BELL, "addr": 0x6004, "answered": True}
    response = client.put(url, json={"doorbells": [BELL, answered]})
    assert response.status_code == 200, response.text
    plain, stored = response.json()["doorbells"]
    assert "answered" not in plain  # absent means not answered: older workloads read the same
    assert stored["answered"] is True and stored["addr"] == 0x6004
    assert client.get(url).json()["limits"]["max_answered_rate_hz"] == 10_000


def test_mmio_inside_the_ram_size_the_worker_reports_is_422(client, make_vm, db):
    vm = make_vm()
    bell = {**BELL, "space": "mmio", "addr": 0x400000}  # above the default 2 MiB of RAM
    url = f"/api/vms/{vm.id}/workload"
    assert client.put(url, json={"doorbells": [bell]}).status_code == 200
    vm.mem_size = 16 << 20  # as the worker's VM row says
    db.commit()
    response = client.put(url, json={"doorbells": [bell]})
    assert response.status_code == 422 and "outside guest RAM" in response.json()["detail"]


def test_benchmark_queue_and_results(client, make_vm, db):
    vm = make_vm()
    response = client.post("/api/benchmarks", json={"vm_id": vm.id, "writes": 1000, "repeat": 2})
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    assert response.headers["location"] == f"/api/benchmarks/{run_id}"
    queued = client.get(f"/api/benchmarks/{run_id}").json()
    assert queued["state"] == "queued" and queued["progress"] == 0 and queued["results"] == []
    run = db.get(BenchmarkRun, run_id)  # the worker finishes it
    run.state, run.progress, run.host, run.kernel = "done", 1.0, "h1", "6.1.0"
    for path, rtt in (("exit", 8.0), ("ioeventfd", 1.5)):
        db.add(
            BenchmarkResult(
                run_id=run_id,
                path=path,
                writes=1000,
                iops=1e6 / rtt,
                rtt_us=rtt,
                rtt_us_min=rtt * 0.9,
                rtt_us_max=rtt * 2,
                guest_rtt_us=None,
            )
        )
    db.commit()
    done = client.get(f"/api/benchmarks/{run_id}").json()
    assert done["state"] == "done" and done["host"] == "h1" and done["kernel"] == "6.1.0"
    assert [r["path"] for r in done["results"]] == ["exit", "ioeventfd"]
    assert set(done["results"][0]) == {
        "path",
        "writes",
        "iops",
        "rtt_us",
        "rtt_us_min",
        "rtt_us_max",
        "guest_rtt_us",
        "rtt_us_p99",
        "paced_cpu_ns",  # the vCPU thread's CPU time per write, paced (one-way paths)
        "regression",  # null: no earlier run on h1 to fall below
    }
    assert done["results"][0]["regression"] is None
    client.post("/api/benchmarks", json={"writes": 10, "repeat": 1, "paths": ["ioeventfd-pio"]})
    assert len(client.get("/api/benchmarks").json()) == 2
    assert [r["id"] for r in client.get("/api/benchmarks", params={"host": "h1"}).json()] == [
        run_id
    ]
    assert client.get("/api/benchmarks", params={"kernel": "5.0"}).json() == []
    assert client.get("/api/benchmarks/999").status_code == 404


def test_benchmark_rules_are_422(client):
    for body in (
        {"writes": 0, "repeat": 1},
        {"writes": 10, "repeat": 0},
        {"writes": 10, "repeat": 1, "vm_id": 42},
        {"writes": 10, "repeat": 1, "paths": ["exit"]},
    ):
        assert client.post("/api/benchmarks", json=body).status_code == 422, body


def test_a_benchmark_may_name_every_known_path(client, make_vm):
    from contract.benchpaths import BENCH_PATHS

    vm = make_vm()
    body = {"vm_id": vm.id, "writes": 100, "repeat": 1, "paths": list(BENCH_PATHS)}
    response = client.post("/api/benchmarks", json=body)
    assert response.status_code == 202, response.text
    assert client.get(response.headers["location"]).json()["paths"] == list(BENCH_PATHS)
