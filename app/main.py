"""Builds the FastAPI application."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api.routes import health

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def create_app() -> FastAPI:
    """The iosignal app: REST API under /api, dashboard at /."""
    app = FastAPI(
        title="iosignal",
        description="See and steer guest doorbells: KVM ioeventfds as a service.",
        version="0.1.0",
    )
    app.include_router(health.router, prefix="/api")
    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


app = create_app()
