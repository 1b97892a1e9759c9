"""Bodies of the annotations and demo API (issue 12's contract, DASH-API.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas import Text

AnnotationKind = Literal["note", "registration", "workload", "worker", "benchmark"]


class AnnotationOut(BaseModel):
    """A marker for charts: something that changed at `time` (or over time..time_end).

    `id` names where it comes from: `note:5`, `reg:12:applied`, `workload:3`, `worker:7`,
    `bench:4`. Only notes are stored as annotations; the rest is what the database records.
    """

    id: str
    kind: AnnotationKind
    time: datetime
    time_end: datetime | None = None
    text: str
    vm_id: int | None = None
    author: str | None = Field(None, description="the token name of a note's writer")


class NoteIn(BaseModel):
    """A note on the charts: text at a time (default now) or over a span, for a VM or all."""

    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=500)
    time: datetime | None = Field(None, description="ISO 8601; default now")
    time_end: datetime | None = Field(None, description="ISO 8601; a span ends here")
    vm_id: int | None = Field(None, ge=1, le=2**31 - 1, description="null: every VM")

    @field_validator("time", "time_end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A time without a zone is UTC, as everywhere in the API.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _span(self) -> NoteIn:
        start = self.time or datetime.now(UTC)
        if self.time_end is not None and self.time_end < start:
            raise ValueError("time_end must not be before time")
        return self


class DemoIn(BaseModel):
    """Which VM rings the demo workload."""

    model_config = ConfigDict(extra="forbid")

    vm_id: int = Field(ge=1, le=2**31 - 1)


class DemoOut(BaseModel):
    """Whether the demo runs, where, and what it added."""

    active: bool
    vm_id: int | None = None
    ioeventfd_id: int | None = Field(None, description="the demo's registration")
    workload_version: int | None = Field(None, description="the demo's workload version")
    started_at: datetime | None = None
