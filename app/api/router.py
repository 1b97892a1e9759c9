"""All REST routers under one APIRouter, mounted at /api."""

from fastapi import APIRouter

from app.api.routes import auth, benchmarks, ioeventfds, rates, rules, stream, vms, workload

api_router = APIRouter()
for module in (auth, rules, vms, ioeventfds, rates, workload, benchmarks, stream):
    api_router.include_router(module.router)
