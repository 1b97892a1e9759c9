"""Every feature's routes: `api_router`, mounted at /api, and `metrics_router` at the root, where
Prometheus looks."""

from fastapi import APIRouter

from app.api.annotations import routes as annotations
from app.api.benchmarks import routes as benchmarks
from app.api.dashboards import routes as dashboards
from app.api.demo import routes as demo
from app.api.exits import routes as exits
from app.api.hosts import routes as hosts
from app.api.latency import routes as latency
from app.api.metrics import routes as metrics
from app.api.public import routes as public
from app.api.registrations import routes as registrations
from app.api.samples import routes as samples
from app.api.stream import routes as stream
from app.api.vms import routes as vms
from app.api.workloads import routes as workloads

api_router = APIRouter()
for router in (
    public.router,  # /health, /auth, /rules: no token needed
    vms.router,
    hosts.router,
    registrations.router,
    samples.router,  # a registration's rates
    exits.router,
    latency.router,
    workloads.router,
    benchmarks.router,
    stream.router,
    dashboards.router,
    dashboards.panels_router,
    annotations.router,
    demo.router,
):
    api_router.include_router(router)

metrics_router = metrics.router
