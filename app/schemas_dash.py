"""Bodies of the dashboards and panel-data API (issue 12's contract, DASH-API.md)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas import Text
from contract.models import utcnow
from contract.rules import VALID_LENS, parse_u64
from contract.timeparse import parse_time

MAX_PANELS = 24
MAX_SERIES = 48
SLUG_RULE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
Metric = Literal["signals", "exits", "writes", "in_kernel_share", "bench_iops", "bench_rtt"]
# What each metric's series refs must name.
REF_FIELDS: dict[str, tuple[str, ...]] = {
    "signals": ("ioeventfd_id",),
    "exits": ("vm_id", "space", "addr", "len"),
    "writes": ("vm_id", "space", "addr", "len"),
    "in_kernel_share": ("vm_id", "space", "addr", "len"),
    "bench_iops": ("path",),
    "bench_rtt": ("path",),
}
Id32 = Annotated[int, Field(ge=1, le=2**31 - 1)]


def check_time(text: str, name: str) -> str:
    """`text` unchanged if it is "now", relative ("-1h") or ISO 8601; else the rule."""
    try:
        parse_time(text, utcnow())
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    return text


class SeriesRef(BaseModel):
    """One series of a panel; which fields it needs depends on the panel's metric."""

    model_config = ConfigDict(extra="forbid")

    ioeventfd_id: Id32 | None = None
    vm_id: Id32 | None = None
    space: Literal["pio", "mmio"] | None = None
    addr: int | None = Field(None, description='an integer or a "0x..." string')
    len: int | None = None
    path: Text | None = Field(None, max_length=32)
    host: Text | None = Field(None, max_length=255)

    @field_validator("addr", mode="before")
    @classmethod
    def _addr(cls, value: Any) -> Any:
        # Strings and numbers are checked here; anything else fails pydantic's int check.
        is_number = isinstance(value, int) and not isinstance(value, bool)
        return parse_u64(value, "addr") if isinstance(value, str) or is_number else value

    @field_validator("len")
    @classmethod
    def _len(cls, value: int | None) -> int | None:
        if value is not None and value not in VALID_LENS:
            raise ValueError("len must be one of 0, 1, 2, 4, 8")
        return value

    def key(self) -> dict[str, Any]:
        """The fields given, as the response's `ref` echoes them."""
        return self.model_dump(exclude_none=True)


class PanelIn(BaseModel):
    """A chart of one metric over a set of series, optionally aggregated into one.

    An empty `series` list means "every series there is" (every registration, the busiest
    addresses, every benchmark path): what the default Overview uses.
    """

    model_config = ConfigDict(extra="forbid")

    title: Text = Field("", max_length=120)
    metric: Metric
    series: list[SeriesRef] = Field(default_factory=list, max_length=MAX_SERIES)
    aggregate: Literal["none", "sum", "max"] = "none"

    @model_validator(mode="after")
    def _refs_fit_the_metric(self) -> PanelIn:
        needed = REF_FIELDS[self.metric]
        for i, ref in enumerate(self.series):
            lacking = [name for name in needed if getattr(ref, name) is None]
            if lacking:
                raise ValueError(
                    f"series[{i}] of a {self.metric} panel needs {', '.join(needed)} "
                    f"(missing {', '.join(lacking)})"
                )
        return self


class RangeIn(BaseModel):
    """The time range every panel shares: `since` relative or ISO, `until` null/"now"/ISO."""

    model_config = ConfigDict(extra="forbid")

    since: str = Field("-1h", max_length=40)
    until: str | None = Field(None, max_length=40)

    @field_validator("since")
    @classmethod
    def _since(cls, value: str) -> str:
        return check_time(value, "range.since")

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        return None if value is None else check_time(value, "range.until")


class DashboardBody(BaseModel):
    """What a dashboard is: a name, the shared range and refresh, and its panels."""

    name: Text = Field(min_length=1, max_length=120)
    range: RangeIn = Field(default_factory=RangeIn)
    refresh_s: float | None = Field(None, ge=1, le=86400, description="null: no refresh")
    panels: list[PanelIn] = Field(default_factory=list, max_length=MAX_PANELS)

    def spec(self) -> dict[str, Any]:
        """What the `spec` column keeps: everything but name and slug."""
        return self.model_dump(mode="json", include={"range", "refresh_s", "panels"})


class DashboardIn(DashboardBody):
    """A dashboard to store; an exported DashboardOut imports as is (its ids are ignored)."""

    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(
        None, min_length=1, max_length=64, description="default: derived from the name"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_export_fields(cls, data: Any) -> Any:
        # Import is a POST of an export: the stored identity of the exported copy is not ours.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("id", "created_at", "updated_at")}
        return data

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not SLUG_RULE.match(value):
            raise ValueError(
                "slug must be 1 to 64 characters of a-z, 0-9 and '-', starting with a-z or 0-9"
            )
        return value


class DashboardOut(DashboardBody):
    """A stored dashboard (also the export format: POST it back to import it)."""

    id: int
    slug: str
    created_at: datetime
    updated_at: datetime


class DashboardSummary(BaseModel):
    """A line of the dashboards list."""

    id: int
    slug: str
    name: str
    updated_at: datetime
    panels: int = Field(description="how many panels it has")


class PanelsDataIn(BaseModel):
    """Ad-hoc panels to read without saving them (History's compare view)."""

    model_config = ConfigDict(extra="forbid")

    since: str = Field("-1h", max_length=40)
    until: str | None = Field(None, max_length=40)
    panels: list[PanelIn] = Field(min_length=1, max_length=MAX_PANELS)


class SeriesData(BaseModel):
    """One series: bucket start times (ms since the epoch) and values; `missing` says why none."""

    ref: dict[str, Any]
    name: str
    t: list[int]
    v: list[float | None]
    missing: str | None = None


class PanelData(BaseModel):
    """One panel's series over the shared range."""

    title: str
    metric: str
    unit: str
    series: list[SeriesData]


class PanelsDataOut(BaseModel):
    """Every panel's data for one range; since/until in ms since the epoch."""

    since: int
    until: int
    step_s: float
    tier: Literal["raw", "minute"]
    panels: list[PanelData]
