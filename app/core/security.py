"""API tokens: hashing, and the rule that an open listener needs a token."""

import hashlib
import ipaddress

import typer
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import get_sessionmaker
from app.models import ApiToken


def hash_token(token: str) -> str:
    """SHA-256 hex of a token; only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_count() -> int:
    """How many API tokens exist (0 if the table does not exist yet)."""
    try:
        with get_sessionmaker()() as db:
            return db.scalar(select(func.count()).select_from(ApiToken)) or 0
    except SQLAlchemyError:
        return 0


def refuse_open_listen(host: str) -> None:
    """Exit with a message when asked to listen beyond loopback while no token exists."""
    if is_loopback(host) or token_count() > 0:
        return
    typer.echo(
        f"refusing to listen on {host}: no API token exists, so anyone who can reach it could "
        "register ioeventfds. Create one first: iosignal token create --role editor NAME",
        err=True,
    )
    raise typer.Exit(2)
