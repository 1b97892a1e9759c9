"""Who is calling: the dashboard asks this to show or hide editing controls."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.deps import SessionDep, bearer_token, tokens_required
from app.core.security import role_of
from app.schemas import AuthOut

router = APIRouter(tags=["auth"])


@router.get("/auth", response_model=AuthOut)
def whoami(request: Request, db: SessionDep) -> AuthOut:
    """`tokens_required` false means anyone may edit (role editor); else the bearer's role
    (null for a missing or unknown token). Never 401, so a login form can call it."""
    if not tokens_required(db):
        return AuthOut(tokens_required=False, role="editor")
    token = bearer_token(request)
    role = role_of(db, token) if token else None
    return AuthOut(tokens_required=True, role=role)
