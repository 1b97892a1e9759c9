"""Shared fixtures: the real parts a test needs (/dev/kvm, PostgreSQL, Chromium) and databases.

With CI=true a test whose part is missing fails; elsewhere it skips, saying what to install.
`--part parallel|serial` picks one of the suite's two parts (tests/run_parts.py runs both).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import need

# Tests here attach BPF programs that see every VM on the host and assert that none of theirs
# stays loaded: they run in the serial part, alone.
HOST_WIDE = Path(__file__).parent / "observer"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--part",
        choices=("all", "parallel", "serial"),
        default="all",
        help="run only the tests marked serial, only the others, or all (the default)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the host-wide tests serial, then keep the tests of the chosen --part."""
    for item in items:
        if item.path.is_relative_to(HOST_WIDE):
            item.add_marker(pytest.mark.serial)
    part = config.getoption("part")
    if part == "all":
        return
    want_serial = part == "serial"
    keep = [i for i in items if (i.get_closest_marker("serial") is not None) == want_serial]
    if len(keep) < len(items):
        kept = set(keep)
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = keep


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


def _fresh_postgres_db(admin_url: str, template: str | None = None) -> tuple[str, str]:
    """A new database (a copy of `template` if given): its name and URL."""
    # CREATE DATABASE ... TEMPLATE waits (up to 5 s) for a backend still leaving the template
    name = f"iosignal_test_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
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


def _migrate(url: str) -> None:
    """Upgrade `url` to head through a connection closed afterwards (a template must be idle)."""
    from alembic import command

    from contract.db import make_engine
    from contract.migrate import alembic_config

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (per xdist worker), copied per test."""
    path = tmp_path_factory.mktemp("template") / "iosignal.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session (per xdist worker), closed to
    connections (autovacuum's too) so that each test's database is a copy of it."""
    name, url = _fresh_postgres_db(postgres_admin_url)
    _migrate(url)
    engine = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
    engine.dispose()
    yield name
    _drop_postgres_db(postgres_admin_url, name)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database, once on SQLite and once on real PostgreSQL: a copy of the
    session's migrated template (the migrations themselves are tested in tests/app)."""
    if request.param == "sqlite":
        path = tmp_path / "iosignal.db"
        template = request.getfixturevalue("migrated_sqlite")
        src, dst = sqlite3.connect(template), sqlite3.connect(path)
        try:
            src.backup(dst)  # a consistent copy, WAL contents included
        finally:
            src.close()
            dst.close()
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    name, url = _fresh_postgres_db(admin, request.getfixturevalue("migrated_postgres"))
    try:
        yield url
    finally:
        _drop_postgres_db(admin, name)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (IOSIGNAL_CHROMIUM or /usr/bin/chromium)."""
    path = os.environ.get("IOSIGNAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    need("Chromium", os.access(path, os.X_OK), "apt-get install chromium; .ci/run does this")
    return path
