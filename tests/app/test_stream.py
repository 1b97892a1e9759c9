"""/api/stream over a real uvicorn: live ticks, registration events, Last-Event-ID resume, tokens,
and the shared poller dropping a client that falls behind without holding up the others."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from support import add_exit, add_signal, put_sample

from app.api.stream import ticks as stream_ticks
from app.api.stream.hub import StreamHub
from app.core.security import create_token
from contract.models import Feed, Ioeventfd, utcnow
from contract.samples import SeriesIndex, TickIn, write_ticks
from contract.timeparse import epoch_ms


def write_tick(db, reg, when, signals=10, exits=3):
    """One sampling tick as the worker writes it: signal and exit samples in one transaction."""
    add_signal(db, ioeventfd_id=reg.id, taken_at=when, signals=signals, interval_s=0.5)
    add_exit(db, reg.vm_id, when, exits, addr=0x7000, length=2, interval_s=0.5)
    db.commit()


class Events:
    """Reads SSE events from a streaming httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> dict:
        event: dict = {}
        for line in self.lines:
            if not line:
                if "event" in event:
                    return event
                event = {}
                continue
            field, _, value = line.partition(": ")
            if field in ("id", "event"):
                event[field] = value
            elif field == "data":
                event["data"] = json.loads(value)
        raise AssertionError("stream ended")

    def next_rates(self) -> dict:
        while (event := self.next())["event"] != "rates":
            pass
        return event


@pytest.fixture
def reg(db, make_vm):
    vm = make_vm(alive=True)
    reg = Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=4, state="active", label="bell")
    db.add(reg)
    db.commit()
    return reg


def test_live_ticks_then_resume_after_reconnect_without_gaps(live_server, db, reg):
    base = utcnow() - timedelta(seconds=10)
    at = [base + timedelta(seconds=i, microseconds=123_456) for i in range(8)]
    for t in at[:3]:
        write_tick(db, reg, t)  # history before connecting: not replayed without an id
    url = f"{live_server}/api/stream"
    with httpx.Client(timeout=10) as http:
        with http.stream("GET", url, params={"vm_id": reg.vm_id}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = Events(response)
            write_tick(db, reg, at[3], signals=40)
            first = events.next_rates()
            assert first["id"] == str(epoch_ms(at[3]))
            data = first["data"]
            assert data["registrations"] == [
                {
                    "id": reg.id,
                    "space": "pio",
                    "addr": 0x6000,
                    "len": 4,
                    "label": "bell",
                    "signals": 40,
                    "rate_hz": 80.0,
                }
            ]
            assert data["exits"] == [
                {
                    "space": "pio",
                    "addr": 0x7000,
                    "len": 2,
                    "exits": 3,
                    "rate_hz": 6.0,
                    "registered": False,
                }
            ]
            write_tick(db, reg, at[4])
            last_seen = events.next_rates()["id"]
            assert last_seen == str(epoch_ms(at[4]))
        for t in at[5:7]:
            write_tick(db, reg, t)  # while disconnected
        headers = {"Last-Event-ID": last_seen}
        with http.stream("GET", url, params={"vm_id": reg.vm_id}, headers=headers) as response:
            events = Events(response)
            replayed = [events.next_rates()["id"], events.next_rates()["id"]]
            write_tick(db, reg, at[7])
            live = events.next_rates()["id"]
        assert [*replayed, live] == [str(epoch_ms(t)) for t in at[5:8]]
        # A fresh EventSource passes the id as a query parameter instead.
        params = {"vm_id": reg.vm_id, "last_event_id": str(epoch_ms(at[1])), "max_events": 6}
        ids = [
            line
            for line in http.get(url, params=params).text.splitlines()
            if line.startswith("id: ")
        ]
        assert ids == [f"id: {epoch_ms(t)}" for t in at[2:8]]


def test_registration_events_on_changes(live_server, db, reg):
    url = f"{live_server}/api/stream"
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", url, params={"vm_id": reg.vm_id}) as response,
    ):
        events = Events(response)
        made = http.post(
            f"{live_server}/api/vms/{reg.vm_id}/ioeventfds",
            json={"space": "mmio", "addr": 0xD0000000, "len": 4},
        )
        new_id = made.json()["id"]
        seen = []
        while ("pending", new_id) not in seen:
            event = events.next()
            if event["event"] == "registration":
                assert "id" not in event  # keeps the browser's Last-Event-ID for ticks
                seen.append((event["data"]["state"], event["data"]["id"]))
        reg_row = db.get(Ioeventfd, new_id)
        reg_row.state = "active"  # the worker's verdict
        db.commit()
        while ("active", new_id) not in seen:
            event = events.next()
            if event["event"] == "registration":
                seen.append((event["data"]["state"], event["data"]["id"]))


def test_stream_errors_and_token_in_query(live_server, db, reg):
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{live_server}/api/stream", params={"vm_id": 999}).status_code == 404
        assert http.get(f"{live_server}/api/stream").status_code == 422
        token = create_token(db, "viewer", "viewer")
        assert http.get(f"{live_server}/api/stream", params={"vm_id": reg.vm_id}).status_code == 401
        params = {"vm_id": reg.vm_id, "token": token, "last_event_id": 0, "max_events": 1}
        write_tick(db, reg, utcnow() - timedelta(seconds=1))
        response = http.get(f"{live_server}/api/stream", params=params)
        assert response.status_code == 200 and "event: rates" in response.text
        # ?token= is for the stream only
        assert http.get(f"{live_server}/api/vms", params={"token": token}).status_code == 401


def test_a_client_that_falls_behind_is_dropped_and_others_get_everything(app_env, db, reg):
    async def scenario():
        hub = StreamHub(poll_s=3600, max_queue=3)
        slow, fast = await hub.subscribe(reg.vm_id), await hub.subscribe(reg.vm_id)
        hub.task.cancel()  # the test polls by hand
        got = []
        base = utcnow()
        for i in range(4):  # two ticks per poll; the fast client drains after each
            write_tick(db, reg, base + timedelta(seconds=2 * i))
            write_tick(db, reg, base + timedelta(seconds=2 * i + 1))
            await hub._poll(reg.vm_id)
            while not fast.queue.empty():
                event_id, _text = fast.queue.get_nowait()
                if event_id is not None:
                    got.append(event_id)
        hub.task.cancel()
        return hub, slow, fast, got, base

    hub, slow, fast, got, base = asyncio.run(scenario())
    assert got == [epoch_ms(base + timedelta(seconds=i)) for i in range(8)]
    assert slow.dropped and not fast.dropped and hub.drops == 1
    assert slow.queue.get_nowait() == (None, None) and slow not in hub.clients


def test_a_stalled_connection_is_closed_while_a_reader_gets_every_tick(
    live_server, db, reg, monkeypatch
):
    import socket
    import time

    from app.api.stream import routes as stream_route

    monkeypatch.setattr(stream_route, "MAX_QUEUE", 150)
    regs = [reg] + [
        Ioeventfd(
            vm_id=reg.vm_id, space="pio", addr=0x100 + 4 * i, len=4, state="active", label="x" * 120
        )
        for i in range(39)
    ]
    db.add_all(regs[1:])
    db.commit()
    host, port = live_server.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
    stalled.connect((host, int(port)))
    stalled.sendall(f"GET /api/stream?vm_id={reg.vm_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.5)
    base = utcnow()
    expected = [epoch_ms(base + timedelta(milliseconds=10 * i)) for i in range(1200)]
    with (
        httpx.Client(timeout=30) as http,
        http.stream("GET", f"{live_server}/api/stream", params={"vm_id": reg.vm_id}) as response,
    ):
        events = Events(response)
        got: list[int] = []
        for batch in range(12):  # 100 ticks (~0.9 MB of events) at a time
            ticks = [
                TickIn(
                    reg.vm_id,
                    Feed.SIGNALS,
                    base + timedelta(milliseconds=10 * i),
                    0.01,
                    {r.id: (i,) for r in regs},
                )
                for i in range(100 * batch, 100 * batch + 100)
            ]
            write_ticks(db.connection(), SeriesIndex(), ticks)
            db.commit()
            while len(got) < 100 * (batch + 1):
                got.append(int(events.next_rates()["id"]))
    assert got == expected  # every tick, in order, none twice
    stalled.settimeout(20)
    received = 0
    while chunk := stalled.recv(65536):  # drain what was sent; then the server's close
        received += len(chunk)
    stalled.close()
    print(f"stalled client cut off after {received / 1e6:.1f} MB")
    assert received < 1200 * 8000  # it was cut off, not sent everything


def test_a_tick_carries_the_answered_doorbells_kicks_and_interrupts(db, make_vm):
    vm = make_vm(alive=True)
    when = utcnow()
    # a VM with no registrations and no exits: the answers alone make the tick
    put_sample(db, vm.id, Feed.ANSWERS, when, ("pio", 0x6000, 2), 400, 399, interval_s=0.5)
    db.commit()
    (event,) = stream_ticks.ticks_after(db, vm.id, when - timedelta(seconds=1))
    tick = event["data"]
    assert tick["registrations"] == [] and tick["exits"] == [] and tick["interval_s"] == 0.5
    assert tick["answers"] == [
        {
            "space": "pio",
            "addr": 0x6000,
            "len": 2,
            "kicks": 400,
            "interrupts": 399,
            "kicks_hz": 800.0,
            "interrupts_hz": 798.0,
        }
    ]
