"""IOSIGNAL_ADMIN_TOKEN: how compose gives its open listener an editor token."""

import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.security import ensure_admin_token, refuse_open_listen, role_of
from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import ApiToken


@pytest.fixture
def db(tmp_path, monkeypatch):
    from contract.config import get_settings
    from contract.db import get_engine, get_sessionmaker

    url = f"sqlite:///{tmp_path / 'tok.db'}"
    upgrade(url)
    monkeypatch.setenv("IOSIGNAL_DATABASE_URL", url)
    for cached in (get_settings, get_engine, get_sessionmaker):
        cached.cache_clear()
    with Session(make_engine(url)) as session:
        yield session
    for cached in (get_settings, get_engine, get_sessionmaker):
        cached.cache_clear()


def test_open_listen_is_refused_without_a_token_and_allowed_on_loopback(db):
    refuse_open_listen("127.0.0.1")
    with pytest.raises(typer.Exit) as exc:
        refuse_open_listen("0.0.0.0")
    assert exc.value.exit_code == 2


def test_admin_token_becomes_an_editor_token_and_opens_the_listener(db):
    ensure_admin_token(db, "first-secret")
    assert role_of(db, "first-secret") == "editor"
    refuse_open_listen("0.0.0.0")  # no exit now


def test_admin_token_is_idempotent_and_a_new_value_replaces_the_old(db):
    ensure_admin_token(db, "first-secret")
    ensure_admin_token(db, "first-secret")
    assert db.scalar(select(func.count()).select_from(ApiToken)) == 1
    ensure_admin_token(db, "second-secret")
    assert role_of(db, "second-secret") == "editor"
    assert role_of(db, "first-secret") is None
