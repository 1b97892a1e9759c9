"""All REST routers under one APIRouter, mounted at /api."""

from fastapi import APIRouter

from app.api.routes import (
    auth,
    benchmarks,
    dashboards,
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
    ioeventfds,
    rates,
    workload,
    benchmarks,
    stream,
    dashboards,
    panels,
):
    api_router.include_router(module.router)
