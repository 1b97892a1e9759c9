"""`GET /api/stream?vm_id=`: Server-Sent Events, one `rates` event per sampling tick.

Event ids are the tick's `taken_at` in epoch milliseconds. A client that reconnects with
Last-Event-ID (header, or `?last_event_id=` for a fresh EventSource) first gets every tick after
that id from the database, then the live ticks, with none missing and none twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from app.api.deps import AUTH_RESPONSES, INT32_MAX, authorize_stream
from app.api.lookups import ensure_vm
from app.api.stream.hub import Client, StreamHub, sse
from app.api.stream.ticks import changed_registrations, ticks_after
from contract.config import get_settings
from contract.db import get_sessionmaker
from contract.timeparse import after_epoch_ms

router = APIRouter(
    tags=["stream"], dependencies=[Depends(authorize_stream)], responses=AUTH_RESPONSES
)
KEEPALIVE_S = 15.0
MAX_QUEUE = 1000  # events a client may lag behind before it is dropped (> one poll's ticks)
REPLAY_PAGE = 100


def hub_of(request: Request) -> StreamHub:
    """The app's shared hub, made on first use."""
    hub = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        poll_s = min(0.5, max(0.05, get_settings().sample_interval_s / 4))
        hub = request.app.state.stream_hub = StreamHub(poll_s=poll_s, max_queue=MAX_QUEUE)
    return hub


class DroppableStream(StreamingResponse):
    """A streaming response the hub can cancel when its client falls behind."""

    def __init__(self, content: AsyncIterator[str], hub: StreamHub, client: Client) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.hub, self.client = hub, client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.CancelScope() as cancel_scope:
                self.client.cancel_scope = cancel_scope
                await super().__call__(scope, receive, send)
        finally:
            self.hub.unsubscribe(self.client)


def _replay(vm_id: int, last_id: int) -> tuple[list, list]:
    since = after_epoch_ms(last_id)
    with get_sessionmaker()() as db:
        # ticks_after is strict (>): start one microsecond before the first instant after the id
        ticks = ticks_after(db, vm_id, since - timedelta(microseconds=1), REPLAY_PAGE)
        return ticks, changed_registrations(db, vm_id, since)


async def _events(
    client: Client, last_id: int | None, max_events: int | None
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"  # opens the stream at once; browsers retry after 2 s
    sent, count = last_id, 0
    if last_id is not None:
        first, after = True, last_id
        while True:  # replay what was missed, page by page
            ticks, regs = await run_in_threadpool(_replay, client.vm_id, after)
            for reg in regs if first else []:
                yield sse("registration", reg)
            first = False
            for tick in ticks:
                yield sse("rates", tick["data"], tick["id"])
                sent = after = tick["id"]
                count += 1
                if max_events is not None and count >= max_events:
                    return
            if len(ticks) < REPLAY_PAGE:
                break
    while True:
        try:
            event_id, text = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
        except TimeoutError:
            yield ": keepalive\n\n"
            continue
        if text is None:
            return  # dropped for falling behind: the browser reconnects and replays
        if event_id is not None:
            if sent is not None and event_id <= sent:
                continue  # already replayed
            sent, count = event_id, count + 1
        yield text
        if event_id is not None and max_events is not None and count >= max_events:
            return


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE"}, 404: {}},
)
async def stream(
    request: Request,
    vm_id: Annotated[int, Query(ge=1, le=INT32_MAX)],
    last_event_id: Annotated[int | None, Query(ge=0, description="resume after this id")] = None,
    last_event_id_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    max_events: Annotated[int | None, Query(ge=1, description="close after N rates events")] = None,
) -> StreamingResponse:
    """`rates` events (id = tick epoch-ms; every registration's signals and rate, top exits)
    and `registration` events (a registration's new state). Token via `?token=` if needed."""
    await run_in_threadpool(_ensure_vm, vm_id)
    hub = hub_of(request)
    client = await hub.subscribe(vm_id)  # subscribe first, then replay: nothing falls between
    last_id = last_event_id_header if last_event_id_header is not None else last_event_id
    return DroppableStream(_events(client, last_id, max_events), hub, client)


def _ensure_vm(vm_id: int) -> None:
    with get_sessionmaker()() as db:  # its own short session: the stream must not hold one
        ensure_vm(db, vm_id)
