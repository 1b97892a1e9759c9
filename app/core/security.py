"""API tokens: hashing, and the rule that an open listener needs a token."""

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from datetime import timedelta

import typer
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from contract.db import get_sessionmaker
from contract.models import ApiToken, utcnow


def hash_token(token: str) -> str:
    """SHA-256 hex of a token; only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


ROLES = ("viewer", "editor")
LAST_USED_EVERY = timedelta(minutes=1)
TOKEN_PREFIX = "ios_"


def new_token() -> str:
    """A fresh random token (256 bits), shown once and never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(db: Session, name: str, role: str) -> str:
    """Store the hash of a new token named `name` with `role`; return the token itself."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 64:
        raise ValueError("name must be 1 to 64 characters")
    if db.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise ValueError(f"a token named {name!r} exists already; revoke it first")
    token = new_token()
    db.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
    db.commit()
    return token


def revoke_token(db: Session, name: str) -> bool:
    """Delete the token named `name`; False if there was none."""
    row = db.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        return False
    db.delete(row)
    db.commit()
    return True


def authenticate(db: Session, token: str) -> ApiToken | None:
    """The stored token matching `token`, or None; every hash is compared in constant time."""
    digest = hash_token(token)
    found = None
    for row in db.scalars(select(ApiToken)):
        # No early exit: the time taken does not depend on where (or whether) it matched.
        if hmac.compare_digest(digest, row.token_hash):
            found = row
    return found


def role_of(db: Session, token: str) -> str | None:
    """The role of `token`, or None."""
    row = authenticate(db, token)
    return row.role if row else None


def mark_used(db: Session, row: ApiToken) -> None:
    """Record that `row` was used; at most once a minute, so reads stay reads."""
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now
        db.commit()


def ensure_admin_token(db: Session, token: str) -> None:
    """Store `token` as the editor token "admin" (IOSIGNAL_ADMIN_TOKEN), replacing an older one."""
    digest = hash_token(token)
    row = db.scalar(select(ApiToken).where(ApiToken.name == "admin"))
    if row is None:
        db.add(ApiToken(name="admin", role="editor", token_hash=digest))
    elif row.token_hash != digest or row.role != "editor":
        row.token_hash, row.role = digest, "editor"
    db.commit()


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


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class RedactTokens(logging.Filter):
    """Blank `?token=` (the stream's EventSource token) in access-log lines: never logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments; always keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def redact_tokens_in_access_log() -> None:
    """Install `RedactTokens` on uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
