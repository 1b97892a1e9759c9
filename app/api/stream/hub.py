"""One database poller shared by every /api/stream client of an app.

The poller runs as a task on the app's event loop while anyone listens; its queries run in the
thread pool. Each client has a bounded queue filled with `put_nowait`: a client that falls behind
is dropped (its queue cleared, its response cancelled) and never slows the poller or the others.
A dropped browser reconnects with Last-Event-ID and replays the gap from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from app.api.stream.observed import ObservedCursor
from app.api.stream.ticks import changed_registrations, newest_tick, ticks_after
from contract.db import get_sessionmaker
from contract.models import utcnow

log = logging.getLogger("iosignal.stream")
# Ticks committed later than this after they were taken (a writer catching up after an outage)
# reach clients on their next reconnect (Last-Event-ID replay), not live.
LIVE_WINDOW = timedelta(seconds=30)


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One Server-Sent Event; events without an id leave the browser's Last-Event-ID alone."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class Client:
    """One listener: a bounded queue of (event id or None, SSE text); None text = dropped."""

    vm_id: int
    queue: asyncio.Queue[tuple[int | None, str | None]]
    cancel_scope: anyio.CancelScope | None = None
    dropped: bool = False

    def offer(self, event_id: int | None, text: str) -> None:
        """Queue an event without waiting; drop this client if its queue is full."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait((event_id, text))
        except asyncio.QueueFull:
            self.drop()

    def drop(self) -> None:
        """Forget queued events, wake the reader with the end marker, cancel a blocked send."""
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait((None, None))
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()


@dataclass
class _VmCursor:
    tick_at: datetime
    reg_at: datetime
    observed: ObservedCursor  # the observer's rows sent, by commit order (stream/observed.py)
    sent: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (state, updated_at)


class StreamHub:
    """Polls the database for new ticks and registration changes of the VMs being watched."""

    def __init__(self, poll_s: float = 0.25, max_queue: int = 1000) -> None:
        self.poll_s, self.max_queue = poll_s, max_queue
        self.clients: set[Client] = set()
        self.cursors: dict[int, _VmCursor] = {}
        self.task: asyncio.Task[None] | None = None
        self.drops = 0

    async def subscribe(self, vm_id: int) -> Client:
        """A new client of `vm_id`; starts the poller if it is not running."""
        if vm_id not in self.cursors:
            self.cursors[vm_id] = await run_in_threadpool(self._start_cursor, vm_id)
        client = Client(vm_id, asyncio.Queue(self.max_queue))
        self.clients.add(client)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        return client

    def unsubscribe(self, client: Client) -> None:
        """Forget a client (the poller stops when none is left)."""
        self.clients.discard(client)

    def _start_cursor(self, vm_id: int) -> _VmCursor:
        now = utcnow()
        with get_sessionmaker()() as db:
            newest = newest_tick(db, vm_id, now - LIVE_WINDOW) or now - LIVE_WINDOW
        return _VmCursor(tick_at=newest, reg_at=now, observed=ObservedCursor(newest))

    async def _run(self) -> None:
        while self.clients:
            for vm_id in {c.vm_id for c in self.clients}:
                try:
                    await self._poll(vm_id)
                except Exception:  # a failed poll is logged and retried, the stream goes on
                    log.exception("stream poll for VM %d failed", vm_id)
            await asyncio.sleep(self.poll_s)
        self.cursors.clear()  # restart from "now" when someone listens again

    async def _poll(self, vm_id: int) -> None:
        cursor = self.cursors[vm_id]
        # The raw tier is keyed time-first: never scan further back than the live window, or an
        # idle VM's poll would read every other VM's samples since its own last tick.
        horizon = utcnow() - LIVE_WINDOW
        after = max(cursor.tick_at, horizon)
        cursor.observed.through = max(cursor.observed.through, horizon)
        ticks, regs = await run_in_threadpool(
            self._read, vm_id, after, cursor.reg_at, cursor.observed
        )
        events: list[tuple[int | None, str]] = []
        for reg in regs:
            mark = (reg["state"], reg["updated_at"])
            if cursor.sent.get(reg["id"]) != mark:
                cursor.sent[reg["id"]] = mark
                events.append((None, sse("registration", reg)))
        if regs:
            cursor.reg_at = max(datetime.fromisoformat(r["updated_at"]) for r in regs)
        for tick in ticks:
            events.append((tick["id"], sse("rates", tick["data"], tick["id"])))
        if ticks:
            cursor.tick_at = datetime.fromisoformat(ticks[-1]["data"]["t"])
        for client in [c for c in self.clients if c.vm_id == vm_id]:
            for event_id, text in events:
                client.offer(event_id, text)
            if client.dropped:
                self.drops += 1
                self.clients.discard(client)

    @staticmethod
    def _read(
        vm_id: int, tick_at: datetime, reg_at: datetime, observed: ObservedCursor
    ) -> tuple[list, list]:
        with get_sessionmaker()() as db:
            ticks = ticks_after(db, vm_id, tick_at, cursor=observed)
            return ticks, changed_registrations(db, vm_id, reg_at)
