"""Panel data (saved and ad-hoc): the values are what the worker stored; bad refs say so."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import delete
from support import add_exit, add_signal

from contract.models import (
    BenchmarkResult,
    BenchmarkRun,
    Ioeventfd,
    Vm,
    utcnow,
)
from contract.timeparse import epoch_ms


@pytest.fixture
def two_vms(db, make_vm):
    """Two VMs with a registration each, and ten 1-second ticks of signals on both."""
    now = utcnow().replace(microsecond=0)
    regs = []
    for name, base in (("vm-a", 100), ("vm-b", 1000)):
        vm = make_vm(name, alive=True)
        reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=2, state="active", label=name)
        db.add(reg)
        db.commit()
        for i in range(1, 11):
            at = now - timedelta(seconds=i)
            add_signal(db, ioeventfd_id=reg.id, taken_at=at, signals=base + i, interval_s=1.0)
        regs.append(reg)
    db.commit()
    return now, regs


def adhoc(client, panels, since="-1m", **params):
    response = client.post("/api/panels/data", json={"since": since, "panels": panels}, **params)
    assert response.status_code == 200, response.text
    return response


def test_signals_are_the_stored_rates_per_tick_and_sum_folds_them(client, two_vms):
    now, (a, b) = two_vms
    refs = [{"ioeventfd_id": a.id}, {"ioeventfd_id": b.id}, {"ioeventfd_id": 999}]
    body = adhoc(
        client,
        [
            {"title": "each", "metric": "signals", "series": refs},
            {"title": "total", "metric": "signals", "series": refs[:2], "aggregate": "sum"},
            {"title": "peak", "metric": "signals", "series": refs, "aggregate": "max"},
        ],
    ).json()
    assert body["tier"] == "raw" and body["step_s"] == 1.0
    assert body["until"] - body["since"] == 60_000
    each, total, peak = body["panels"]
    assert (each["title"], each["metric"], each["unit"]) == ("each", "signals", "signals/s")
    ticks = [epoch_ms(now - timedelta(seconds=i)) for i in range(10, 0, -1)]
    first, second, gone = each["series"]
    assert first["ref"] == {"ioeventfd_id": a.id} and first["name"] == f"vm-a: vm-a (#{a.id})"
    assert first["t"] == ticks and first["v"] == [100.0 + i for i in range(10, 0, -1)]
    assert second["v"] == [1000.0 + i for i in range(10, 0, -1)] and "missing" not in second
    assert gone["missing"] == "registration 999 does not exist"
    assert gone["t"] == [] and gone["v"] == []
    [summed] = total["series"]
    assert summed["name"] == "sum" and summed["t"] == ticks
    assert summed["v"] == [1100.0 + 2 * i for i in range(10, 0, -1)]
    [highest] = peak["series"]
    assert highest["v"] == second["v"] and "registration 999 does not exist" in highest["name"]


def test_exits_per_address_of_a_vm_and_an_unknown_vm(client, db, make_vm):
    vm = make_vm(alive=True)
    now = utcnow().replace(microsecond=0)
    for i in range(1, 6):
        at = now - timedelta(seconds=i)
        add_exit(db, vm.id, at, 50 * i, space="mmio", addr=0xD0000000, length=4)
        add_exit(db, vm.id, at, 7, space="mmio", addr=0xD0000000, length=2)  # another width
    db.commit()
    ref = {"vm_id": vm.id, "space": "mmio", "addr": "0xd0000000", "len": 4}
    panel = {"metric": "exits", "series": [ref, {**ref, "vm_id": 99}, {**ref, "addr": 0x1234}]}
    [data] = adhoc(client, [panel]).json()["panels"]
    hot, unknown, silent = data["series"]
    assert data["unit"] == "exits/s"
    assert hot["ref"] == {**ref, "addr": 0xD0000000} and hot["name"] == "vm0: mmio 0xd0000000 len 4"
    assert hot["t"] == [epoch_ms(now - timedelta(seconds=i)) for i in range(5, 0, -1)]
    assert hot["v"] == [250.0, 200.0, 150.0, 100.0, 50.0]
    assert unknown["missing"] == "VM 99 does not exist" and unknown["t"] == []
    assert silent["t"] == [] and "missing" not in silent  # a known VM, no exits there


def test_long_range_reads_rollups_then_the_raw_tail(client, db, make_vm):
    vm = make_vm(alive=True)
    reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=2, state="active")
    db.add(reg)
    db.commit()
    boundary = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=1)
    for m in range(1, 4):  # three rolled-up minutes of 600 signals each
        minute = boundary - timedelta(minutes=m)
        add_signal(db, ioeventfd_id=reg.id, minute_at=minute, signals=600, interval_s=60.0)
        # a raw sample under a rollup is counted once, by the rollup
        add_signal(db, ioeventfd_id=reg.id, taken_at=minute, signals=10, interval_s=1.0)
    add_signal(db, ioeventfd_id=reg.id, taken_at=boundary, signals=30, interval_s=1.0)
    db.get(Vm, vm.id).rolled_up_until = boundary
    db.commit()
    panel = {"metric": "signals", "series": [{"ioeventfd_id": reg.id}]}
    body = adhoc(client, [panel], since="-3h").json()
    assert body["tier"] == "minute" and body["step_s"] == 60.0
    [series] = body["panels"][0]["series"]
    minutes = [epoch_ms(boundary - timedelta(minutes=m)) for m in (3, 2, 1)]
    assert series["t"] == [*minutes, epoch_ms(boundary)]
    assert series["v"] == [10.0, 10.0, 10.0, 30.0]


def test_benchmark_paths_across_runs_by_host_and_an_unknown_path(client, db):
    now = utcnow()
    runs = []
    for host, minutes_ago, iops in (("h1", 20, 500_000.0), ("h2", 10, 400_000.0), ("h1", 5, 450e3)):
        run = BenchmarkRun(writes=1, repeat=1, state="done", host=host, kernel="6.1")
        run.finished_at = now - timedelta(minutes=minutes_ago)
        run.results.append(
            BenchmarkResult(
                path="ioeventfd-pio",
                writes=1,
                iops=iops,
                rtt_us=1e6 / iops,
                rtt_us_min=1.0,
                rtt_us_max=3.0,
            )
        )
        db.add(run)
        runs.append(run)
    db.commit()
    refs = [
        {"path": "ioeventfd-pio", "host": "h1"},
        {"path": "ioeventfd-pio"},
        {"path": "warp-drive"},
        {"path": "ioeventfd-pio", "host": "nohost"},
    ]
    panels = [
        {"metric": "bench_iops", "series": refs},
        {"metric": "bench_rtt", "series": refs[:1]},
    ]
    iops, rtt = adhoc(client, panels, since="-1h").json()["panels"]
    h1, every, unknown, nohost = iops["series"]
    assert h1["name"] == "ioeventfd-pio on h1"
    assert h1["t"] == [epoch_ms(runs[0].finished_at), epoch_ms(runs[2].finished_at)]
    assert h1["v"] == [500_000.0, 450_000.0]
    assert every["v"] == [500_000.0, 400_000.0, 450_000.0]
    assert unknown["missing"].startswith("path 'warp-drive' does not exist")
    assert nohost["missing"] == "no benchmark ran on host 'nohost'"
    assert rtt["unit"] == "us" and rtt["series"][0]["v"] == [2.0, pytest.approx(1e6 / 450e3)]


def test_panels_without_refs_show_every_registration_and_the_busiest_addresses(client, db, two_vms):
    now, (a, b) = two_vms
    db.add(Ioeventfd(vm_id=a.vm_id, space="pio", addr=0x7000, len=1, state="removed"))
    add_exit(db, b.vm_id, now - timedelta(seconds=2), 40, space="pio", addr=0x6004)
    db.commit()
    signals, exits = adhoc(client, [{"metric": "signals"}, {"metric": "exits"}]).json()["panels"]
    assert [s["ref"] for s in signals["series"]] == [{"ioeventfd_id": a.id}, {"ioeventfd_id": b.id}]
    assert [s["ref"] for s in exits["series"]] == [
        {"vm_id": b.vm_id, "space": "pio", "addr": 0x6004, "len": 4}
    ]
    assert exits["series"][0]["v"] == [40.0]


def test_a_deleted_vm_makes_its_series_missing_not_an_error(client, db, two_vms):
    _now, (a, b) = two_vms
    board = {
        "name": "two",
        "panels": [
            {"metric": "signals", "series": [{"ioeventfd_id": a.id}, {"ioeventfd_id": b.id}]}
        ],
    }
    assert client.post("/api/dashboards", json=board).status_code == 201
    db.execute(delete(Vm).where(Vm.id == a.vm_id))  # the database cascades to its rows
    db.commit()
    response = client.get("/api/dashboards/two/data", params={"since": "-1m"})
    assert response.status_code == 200
    gone, kept = response.json()["panels"][0]["series"]
    assert gone["missing"] == f"registration {a.id} does not exist"
    assert len(kept["v"]) == 10


def test_saved_range_by_default_and_the_query_overrides_it(client, two_vms):
    now, (a, _b) = two_vms
    since = (now - timedelta(seconds=5)).isoformat()
    board = {
        "name": "ranged",
        "range": {"since": since, "until": now.isoformat()},
        "panels": [{"metric": "signals", "series": [{"ioeventfd_id": a.id}]}],
    }
    client.post("/api/dashboards", json=board)
    saved = client.get("/api/dashboards/ranged/data").json()
    assert (saved["since"], saved["until"]) == (epoch_ms(now) - 5000, epoch_ms(now))
    assert len(saved["panels"][0]["series"][0]["v"]) == 4  # ticks at -4..-1 s (-5 s excluded)
    earlier = (now - timedelta(seconds=30)).isoformat()
    wider = client.get("/api/dashboards/ranged/data", params={"since": earlier}).json()
    assert len(wider["panels"][0]["series"][0]["v"]) == 10
    assert wider["until"] == epoch_ms(now)  # each bound overrides on its own
    live = client.get("/api/dashboards/ranged/data", params={"until": "now"}).json()
    assert live["until"] > epoch_ms(now) and live["panels"][0]["series"][0]["v"][-1] == 101.0
    bad = client.get("/api/dashboards/ranged/data", params={"since": "later"})
    assert bad.status_code == 422 and "ISO 8601" in bad.json()["detail"]
    assert client.get("/api/dashboards/nope/data").status_code == 404


def test_adhoc_exports_exactly_what_is_shown_as_csv_and_json(client, two_vms):
    _now, (a, _b) = two_vms
    panels = [{"title": "pair", "metric": "signals", "series": [{"ioeventfd_id": a.id}]}]
    shown = adhoc(client, panels).json()
    as_json = adhoc(client, panels, params={"format": "json"})
    assert as_json.headers["content-disposition"] == 'attachment; filename="panels.json"'
    assert as_json.json()["panels"] == shown["panels"]
    as_csv = adhoc(client, panels, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    series = shown["panels"][0]["series"][0]
    assert [int(r["t"]) for r in rows] == series["t"]
    assert [float(r["v"]) for r in rows] == series["v"]
    assert {r["panel"] for r in rows} == {"pair"} and rows[0]["time"].endswith("+00:00")
    bad = client.post("/api/panels/data", json={"panels": []})
    assert bad.status_code == 422 and "panels" in bad.json()["detail"]
