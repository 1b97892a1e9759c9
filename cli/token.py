"""`iosignal token create|list|revoke`: API tokens (only their SHA-256 is stored)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.config import get_settings
from contract.db import get_sessionmaker

token_cli = typer.Typer(
    help="API tokens: once one exists, the API requires them.", no_args_is_help=True
)


def _session() -> Session:
    from contract.migrate import upgrade

    upgrade(get_settings().database_url)  # the table must exist; a no-op when at head
    return get_sessionmaker()()


@token_cli.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name to list and revoke it by.")],
    role: Annotated[str, typer.Option(help="viewer (read) or editor (read and write).")] = "viewer",
) -> None:
    """Create a token and print it once; keep it, it cannot be shown again."""
    from app.core.security import create_token

    with _session() as db:
        try:
            token = create_token(db, name, role)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(token)
    typer.echo(f"{role} token {name!r} created; it is shown only this once.", err=True)


@token_cli.command("list")
def list_tokens() -> None:
    """List tokens by name and role (never the tokens themselves)."""
    from contract.models import ApiToken

    with _session() as db:
        query = select(ApiToken.name, ApiToken.role, ApiToken.created_at, ApiToken.last_used_at)
        rows = db.execute(query).all()
    for name, role, created_at, used_at in rows:
        used = f"used {used_at:%Y-%m-%d %H:%M}Z" if used_at else "never used"
        typer.echo(f"{name}\t{role}\tcreated {created_at:%Y-%m-%d %H:%M:%S}Z\t{used}")
    if not rows:
        typer.echo("no tokens: the API is open (to loopback only)", err=True)


@token_cli.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Delete a token; requests carrying it get 401 from then on."""
    from app.core.security import revoke_token

    with _session() as db:
        if not revoke_token(db, name):
            typer.echo(f"error: no token named {name!r}", err=True)
            raise typer.Exit(1)
    typer.echo(f"token {name!r} revoked")
