"""Shared fixtures: the real parts a test needs (/dev/kvm, PostgreSQL, Chromium) and databases.

With CI=true a test whose part is missing fails; elsewhere it skips, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import need


def kvm_available(path: str = "/dev/kvm") -> bool:
    """/dev/kvm exists and this user may open it read-write."""
    return os.path.exists(path) and os.access(path, os.R_OK | os.W_OK)


@pytest.fixture(scope="session")
def kvm_path() -> str:
    """The KVM device, or a failure/skip saying how to get it."""
    path = os.environ.get("IOSIGNAL_KVM_PATH", "/dev/kvm")
    need("/dev/kvm", kvm_available(path), "run on Linux with KVM; add the user to group kvm")
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a real PostgreSQL server (IOSIGNAL_TEST_POSTGRES_URL), reachable."""
    url = os.environ.get("IOSIGNAL_TEST_POSTGRES_URL", "")
    ok = False
    if url:
        try:
            engine = create_engine(url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            ok = True
        except Exception:  # any connection failure means "not available"
            ok = False
    need(
        "PostgreSQL",
        ok,
        "install postgresql, start it and set IOSIGNAL_TEST_POSTGRES_URL "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); .ci/run does this",
    )
    return url


def _fresh_postgres_db(admin_url: str) -> tuple[str, str]:
    name = f"iosignal_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_db(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def empty_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped after it."""
    name, url = _fresh_postgres_db(postgres_admin_url)
    yield url
    _drop_postgres_db(postgres_admin_url, name)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A new, empty SQLite file for one test."""
    return f"sqlite:///{tmp_path / 'iosignal.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database, once on SQLite and once on real PostgreSQL."""
    from contract.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'iosignal.db'}"
        upgrade(url)
        yield url
        return
    admin = request.getfixturevalue("postgres_admin_url")
    name, url = _fresh_postgres_db(admin)
    try:
        upgrade(url)
        yield url
    finally:
        _drop_postgres_db(admin, name)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (IOSIGNAL_CHROMIUM or /usr/bin/chromium)."""
    path = os.environ.get("IOSIGNAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    need("Chromium", os.access(path, os.X_OK), "apt-get install chromium; .ci/run does this")
    return path
