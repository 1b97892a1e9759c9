"""Fixtures for API tests: an app on a fresh database (SQLite and PostgreSQL), and DB helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from contract.config import get_settings
from contract.db import get_engine, get_sessionmaker
from contract.models import Vm, utcnow


def clear_caches() -> None:
    """Forget the cached settings/engine so a changed IOSIGNAL_* environment takes effect."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_sessionmaker.cache_clear()
    get_engine.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def app_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """IOSIGNAL_DATABASE_URL pointing at a fresh migrated database; caches cleared around it."""
    monkeypatch.setenv("IOSIGNAL_DATABASE_URL", db_url)
    monkeypatch.setenv("IOSIGNAL_VERDICT_TIMEOUT_S", "0.5")
    clear_caches()
    yield db_url
    clear_caches()


@pytest.fixture
def client(app_env: str) -> Iterator[TestClient]:
    """A TestClient on a new app bound to the test database."""
    from app.main import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def db(app_env: str) -> Iterator[Session]:
    """A session on the test database, for writing rows as the worker would."""
    with get_sessionmaker()() as session:
        yield session


@pytest.fixture
def make_vm(db: Session) -> Callable[..., Vm]:
    """Create a VM row; `alive=True` gives it a fresh heartbeat as a running worker writes."""

    def make(name: str = "vm0", alive: bool = False) -> Vm:
        now = utcnow()
        vm = Vm(
            name=name,
            host="testhost",
            kernel="6.1.0",
            capabilities={"ioeventfd": True},
            state="running" if alive else "stopped",
            heartbeat_at=now if alive else now - timedelta(minutes=5),
            started_at=now,
        )
        db.add(vm)
        db.commit()
        return vm

    return make


@pytest.fixture
def live_server(app_env: str) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port (for streaming); its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from app.main import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    server.force_exit = True  # open event streams must not hold the shutdown
    thread.join(10)


@pytest.fixture
def worker_api(app_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client for tests with a real worker: a verdict timeout that allows a busy machine."""
    from app.main import create_app

    monkeypatch.setenv("IOSIGNAL_VERDICT_TIMEOUT_S", "10")
    monkeypatch.setenv("IOSIGNAL_SAMPLE_INTERVAL_S", "0.2")
    clear_caches()
    with TestClient(create_app()) as test_client:
        yield test_client
