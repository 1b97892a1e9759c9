"""`GET /metrics`: Prometheus exposition built from the database on each scrape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep
from app.api.latency.prometheus import LatencyCollector
from app.api.metrics.collectors import DatabaseCollector, StreamCollector

router = APIRouter(tags=["metrics"], dependencies=[Authorized], responses=AUTH_RESPONSES)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, db: SessionDep) -> Response:
    """Prometheus text format: signal and exit counters, worker liveness and health, doorbell
    latency histograms, and this app process's stream drops."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db))
    registry.register(LatencyCollector(db))
    registry.register(StreamCollector(getattr(request.app.state, "stream_hub", None)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
