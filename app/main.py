"""Builds the FastAPI application."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.api import errors
from app.api.router import api_router, metrics_router
from app.core.security import redact_tokens_in_access_log

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def create_app() -> FastAPI:
    """The iosignal app: REST API under /api, dashboard at /."""
    app = FastAPI(
        title="iosignal",
        description="See and steer guest doorbells: KVM ioeventfds as a service.",
        version="0.1.0",
    )
    errors.install(app)
    redact_tokens_in_access_log()
    app.include_router(api_router, prefix="/api")
    app.include_router(metrics_router)

    @app.get("/d/{slug}", include_in_schema=False)
    def dashboard_page(slug: str) -> FileResponse:
        # A dashboard's link: the page itself routes by its path (static/js/nav.js).
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


app = create_app()
