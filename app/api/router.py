"""All REST routers under one APIRouter (mounted at /api) plus /metrics at the root."""

from fastapi import APIRouter

from app.api.routes import ioeventfds, rates, vms

api_router = APIRouter()
api_router.include_router(vms.router)
api_router.include_router(ioeventfds.router)
api_router.include_router(rates.router)
