"""All REST routers under one APIRouter, mounted at /api."""

from fastapi import APIRouter

from app.api.routes import (
    annotations,
    auth,
    benchmarks,
    dashboards,
    demo,
    hosts,
    ioeventfds,
    panels,
    rates,
    rules,
    stream,
    vms,
    workload,
)

api_router = APIRouter()
for module in (
    auth,
    rules,
    vms,
    hosts,
    ioeventfds,
    rates,
    workload,
    benchmarks,
    stream,
    dashboards,
    panels,
    annotations,
    demo,
):
    api_router.include_router(module.router)
