"""`GET /api/hosts` at fleet scale, on SQLite and PostgreSQL: a small simulated fleet written by
the observer's own writer (benchmarks/fleetsim.py), paged, sorted by each figure and searched; every
figure the sort used is the one the page shows, computed from the ticks' sums or, for ticks
stored before the sums existed, by decoding them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from benchmarks.fleetsim import FleetShape, SimHost, doorbell, history, host_name
from contract.db import get_engine
from contract.models import Sample, utcnow
from observer.writer import ObservedWriter

FLEET = FleetShape(hosts=3, vms=7, doorbells=4)  # 21 VMs
FIGURE = {"writes": "writes_hz", "userspace": "userspace_hz", "share": "in_kernel_share"}


@pytest.fixture
def fleet(db):
    """Five 1 s ticks of every host, ending a second ago."""
    end = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    for i in range(FLEET.hosts):
        host = SimHost(i, FLEET, end - timedelta(minutes=1))
        writer = ObservedWriter(get_engine(), host.name, started_at=end - timedelta(seconds=30))
        for tick in history(host, 5, end):
            writer.put(tick)
        assert writer.flush()


def every_vm(client, **params) -> list[dict]:
    """Every page of the answer, in order."""
    out, page = [], 1
    while True:
        body = client.get("/api/hosts", params={"since": "-1m", **params, "page": page}).json()
        out += body["vms"]
        if page >= body["pages"]:
            return out
        page += 1


def test_pages_split_the_fleet_by_host_and_count_it(client, fleet):
    body = client.get("/api/hosts", params={"per_page": 5, "page": 2}).json()
    assert (body["total"], body["pages"], body["page"], body["sort"], body["order"]) == (
        21,
        5,
        2,
        "host",
        "asc",
    )
    assert [(h["host"], h["owned"], h["observed"]) for h in body["hosts"]] == [
        (host_name(i), 0, FLEET.vms) for i in range(FLEET.hosts)
    ]
    everyone = every_vm(client, per_page=5)
    assert [(v["host"], v["id"]) for v in everyone] == sorted(
        (v["host"], v["id"]) for v in everyone
    )
    assert len({v["id"] for v in everyone}) == 21
    assert [v["id"] for v in body["vms"]] == [v["id"] for v in everyone[5:10]]
    assert all(len(v["busiest"]) == FLEET.doorbells for v in everyone)  # all 4 (<= 5) shown
    past = client.get("/api/hosts", params={"per_page": 5, "page": 9}).json()
    assert (past["vms"], past["total"]) == ([], 21)


@pytest.mark.parametrize("sort", ["writes", "userspace", "share"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sorting_orders_every_page_by_the_figure_it_shows(client, fleet, sort, order):
    everyone = every_vm(client, sort=sort, order=order, per_page=4)
    shown = [v[FIGURE[sort]] for v in everyone]
    assert None not in shown and len(set(shown)) > 5  # the fleet's VMs differ
    assert shown == sorted(shown, reverse=order == "desc")


def test_search_by_host_command_pid_and_address(client, fleet):
    def ids(q: str) -> set[int]:
        return {v["id"] for v in every_vm(client, q=q)}

    everyone = every_vm(client)
    by_host = {v["id"] for v in everyone if v["host"] == host_name(1)}
    assert ids(host_name(1)) == by_host and len(by_host) == FLEET.vms
    firecracker = {v["id"] for v in everyone if v["comm"] == "firecracker"}
    assert firecracker and ids("FireCracker") == firecracker  # any case, part of the name
    assert ids("10003") == {v["id"] for v in everyone if v["pid"] == 10003}
    assert len(ids("10003")) == FLEET.hosts
    _, addr, _ = doorbell(3)
    assert ids(f"mmio {addr:#x}/4") == {v["id"] for v in everyone}  # every VM rings it
    assert ids("0xdead0000") == set() and ids("no such vm") == set()
    one = client.get("/api/hosts", params={"host": host_name(2), "q": "10001"}).json()
    assert [(v["host"], v["pid"]) for v in one["vms"]] == [(host_name(2), 10001)]
    assert client.get("/api/hosts", params={"sort": "exits"}).status_code == 422
    assert client.get("/api/hosts", params={"per_page": 201}).status_code == 422


def test_ticks_without_sums_are_decoded_for_the_same_figures(client, db, fleet):
    """Rows stored before migration 0013 have no sums: the sort decodes them instead."""
    before = every_vm(client, sort="writes")
    db.execute(update(Sample).values(sum_first=None, sum_second=None))
    db.commit()
    after = every_vm(client, sort="writes")
    assert [(v["id"], v["writes_hz"]) for v in after] == [
        (v["id"], pytest.approx(v["writes_hz"])) for v in before
    ]
