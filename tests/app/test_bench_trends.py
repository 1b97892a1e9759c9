"""Benchmark regressions (per path and host, against the previous done run) and trends per host,
kernel and KVM module, from runs as the worker stores them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contract.models import BenchmarkResult, BenchmarkRun, utcnow
from contract.timeparse import epoch_ms

PATH = "ioeventfd-pio"


@pytest.fixture
def add_run(db):
    """Store a run as the worker finishes it: `iops` per path, `minutes` ago."""
    now = utcnow()

    def add(host, minutes, iops, kernel="6.1", module="kvm_intel", state="done", path=PATH):
        run = BenchmarkRun(writes=1000, repeat=1, state=state, host=host, kernel=kernel)
        run.kvm_module, run.kvm_nested, run.cpu_model = module, False, "Xeon"
        run.started_at = run.finished_at = now - timedelta(minutes=minutes)
        run.results.append(
            BenchmarkResult(
                path=path,
                writes=1000,
                iops=iops,
                rtt_us=1e6 / iops,
                rtt_us_min=1.0,
                rtt_us_max=9.0,
            )
        )
        db.add(run)
        db.commit()
        return run

    return add


def regression_of(client, run_id, **params):
    body = client.get(f"/api/benchmarks/{run_id}", params=params).json()
    return body["results"][0]["regression"]


def test_a_drop_beyond_the_share_below_the_previous_run_on_the_same_host(client, add_run):
    first = add_run("h1", 50, 500_000.0)
    other_host = add_run("h2", 40, 100_000.0)  # slower host: never compared with h1
    small = add_run("h1", 30, 480_000.0)  # -4 %
    big = add_run("h1", 20, 300_000.0)  # -37.5 % against `small`
    add_run("h1", 15, 1.0, state="failed")  # not done: no baseline for the next
    recovered = add_run("h1", 10, 310_000.0)
    listed = {r["id"]: r for r in client.get("/api/benchmarks").json()}
    flags = {run_id: r["results"][0]["regression"] for run_id, r in listed.items()}
    assert flags[first.id] is None and flags[other_host.id] is None
    assert flags[small.id] is None and flags[recovered.id] is None
    assert flags[big.id] == {
        "previous_run_id": small.id,
        "previous_iops": 480_000.0,
        "drop_share": pytest.approx(0.375),
    }
    assert regression_of(client, big.id) == flags[big.id]
    strict = regression_of(client, small.id, regression_share=0.03)
    assert strict["previous_run_id"] == first.id and strict["drop_share"] == pytest.approx(0.04)
    assert regression_of(client, big.id, regression_share=0.5) is None
    assert listed[big.id]["kvm_module"] == "kvm_intel" and listed[big.id]["cpu_model"] == "Xeon"
    assert listed[big.id]["kvm_nested"] is False
    for bad in (0, 1, -0.1, "x"):
        response = client.get("/api/benchmarks", params={"regression_share": bad})
        assert response.status_code == 422 and "regression_share" in response.json()["detail"]


def test_trends_group_by_host_kernel_and_module_with_regressions(client, add_run):
    a = add_run("h1", 50, 500_000.0)
    b = add_run("h1", 40, 400_000.0)  # -20 %: a regression
    c = add_run("h1", 30, 450_000.0, kernel="6.8")  # new kernel: a new trend, same host
    d = add_run("h1", 20, 440_000.0, module="kvm_pvm", kernel="6.8")
    e = add_run("h2", 10, 90_000.0)
    add_run("h1", 5, 1.0, state="failed")
    mmio = add_run("h1", 5, 300_000.0, path="ioeventfd-mmio")
    trends = client.get("/api/benchmarks/trends").json()
    keys = [(t["path"], t["host"], t["kernel"], t["kvm_module"]) for t in trends]
    assert keys == [
        (PATH, "h1", "6.1", "kvm_intel"),
        (PATH, "h1", "6.8", "kvm_intel"),
        (PATH, "h1", "6.8", "kvm_pvm"),
        (PATH, "h2", "6.1", "kvm_intel"),
        ("ioeventfd-mmio", "h1", "6.1", "kvm_intel"),  # in the benchmark's path order
    ]
    first = trends[0]
    assert [p["run_id"] for p in first["points"]] == [a.id, b.id]
    assert first["points"][0] == {
        "run_id": a.id,
        "t": epoch_ms(a.finished_at),
        "iops": 500_000.0,
        "rtt_us": 2.0,
        "regression": None,
    }
    assert first["points"][1]["regression"]["previous_run_id"] == a.id
    assert first["kvm_nested"] is False and first["cpu_model"] == "Xeon"
    # the previous run on the same host counts, whatever its kernel: c improved on b
    assert [p["regression"] for p in trends[1]["points"]] == [None]
    assert [p["run_id"] for p in trends[2]["points"]] == [d.id]
    assert [p["run_id"] for p in trends[3]["points"]] == [e.id]
    only = client.get("/api/benchmarks/trends", params={"path": "ioeventfd-mmio"}).json()
    assert [t["points"][0]["run_id"] for t in only] == [mmio.id]
    h2 = client.get("/api/benchmarks/trends", params={"host": "h2"}).json()
    assert [t["host"] for t in h2] == ["h2"]
    assert client.get("/api/benchmarks/trends", params={"host": "none"}).json() == []
    assert c.id not in [p["run_id"] for p in first["points"]]
