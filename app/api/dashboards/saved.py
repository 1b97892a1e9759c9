"""Stored dashboards: slugs (derived, unique), the default Overview, and rows to bodies."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.errors import ApiError, not_found
from app.schemas_dash import DashboardIn, DashboardOut, PanelIn, RangeIn
from contract.models import Dashboard

SLUG_MAX = 64

# What a fresh database offers: panels without refs show every series there is, so the demo
# (or any workload) moves them without anyone editing the dashboard.
OVERVIEW = DashboardIn(
    name="Overview",
    slug="overview",
    range=RangeIn(since="-15m"),
    refresh_s=10,
    panels=[
        PanelIn(title="Signals/s of every registration", metric="signals"),
        PanelIn(title="Userspace exits/s, busiest addresses", metric="exits"),
        PanelIn(title="All signals/s together", metric="signals", aggregate="sum"),
        PanelIn(title="Benchmark writes/s per path and host", metric="bench_iops"),
    ],
)


def slugify(name: str) -> str:
    """`My Dash!` -> `my-dash`: lowercase a-z, 0-9 and '-', at most 64 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX].strip("-") or "dashboard"


def slug_taken(db: Session, slug: str, other_than: int | None = None) -> bool:
    """Another dashboard has this slug."""
    query = select(Dashboard.id).where(Dashboard.slug == slug)
    if other_than is not None:
        query = query.where(Dashboard.id != other_than)
    return db.scalar(query) is not None


def free_slug(db: Session, name: str) -> str:
    """The slug of `name`, with -2, -3, ... appended until no dashboard has it."""
    base, n = slugify(name), 1
    slug = base
    while slug_taken(db, slug):
        n += 1
        suffix = f"-{n}"
        slug = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return slug


def taken(slug: str) -> ApiError:
    """409 for a slug another dashboard has."""
    return ApiError(409, f"slug {slug!r} is taken", "EEXIST")


def ensure_overview(db: Session) -> None:
    """Offer the default Overview while no dashboard exists at all (deleting it among others
    keeps it deleted)."""
    if db.scalar(select(func.count()).select_from(Dashboard)):
        return
    db.add(Dashboard(slug="overview", name=OVERVIEW.name, spec=OVERVIEW.spec()))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()  # another app replica made it at the same moment


def get_dashboard(db: Session, slug: str) -> Dashboard:
    """The dashboard `slug`, or 404."""
    ensure_overview(db)
    row = db.scalar(select(Dashboard).where(Dashboard.slug == slug))
    if row is None:
        raise not_found("dashboard", repr(slug))
    return row


def save(db: Session, row: Dashboard, body: DashboardIn) -> Dashboard:
    """Store `body` in `row` (new or existing); 409 if its explicit slug belongs to another."""
    if body.slug is not None and slug_taken(db, body.slug, other_than=row.id):
        raise taken(body.slug)
    row.slug = body.slug or row.slug or free_slug(db, body.name)
    row.name = body.name
    row.spec = body.spec()
    db.add(row)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()  # the same slug stored by someone else since the check above
        raise taken(row.slug) from None
    return row


def dashboard_out(row: Dashboard) -> DashboardOut:
    """A stored row as the API answers it (and exports it)."""
    return DashboardOut.model_validate(
        {
            **row.spec,
            "id": row.id,
            "slug": row.slug,
            "name": row.name,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )
