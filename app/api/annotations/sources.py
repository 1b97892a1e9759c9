"""Annotations for charts: notes people add, and markers derived from what the database already
records (registration verdicts, workload versions, worker starts and stops, benchmark runs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from app.api.registrations import observed as observed_regs
from app.schemas_events import AnnotationOut
from contract.models import (
    BenchmarkRun,
    Ioeventfd,
    Note,
    RegState,
    WorkerEvent,
    Workload,
)
from contract.rules import describe

Range = tuple[datetime, datetime]


def _vm(column: Any, vm_id: int | None, globals_too: bool = False) -> ColumnElement[bool]:
    """Rows of `vm_id` (and those of no VM, when a row may have none); all without a filter."""
    if vm_id is None:
        return true()
    return or_(column == vm_id, column.is_(None)) if globals_too else column == vm_id


def notes(db: Session, span: Range, vm_id: int | None) -> Iterator[AnnotationOut]:
    """Notes at a time in the range, or over a span that overlaps it."""
    since, until = span
    rows = db.scalars(
        select(Note).where(
            Note.time <= until,
            or_(Note.time > since, Note.time_end > since),
            _vm(Note.vm_id, vm_id, globals_too=True),
        )
    )
    for n in rows:
        yield note_out(n)


def note_out(note: Note) -> AnnotationOut:
    """A stored note as an annotation."""
    return AnnotationOut(
        id=f"note:{note.id}",
        kind="note",
        time=note.time,
        time_end=note.time_end,
        text=note.text,
        vm_id=note.vm_id,
        author=note.author,
    )


def registrations(db: Session, span: Range, vm_id: int | None) -> Iterator[AnnotationOut]:
    """Registrations applied, removed or refused by the kernel in the range: iosignal's, and
    the calls the observer saw other VMMs make."""
    yield from observed_regs.markers(db, span, vm_id)
    since, until = span
    failed = Ioeventfd.state == RegState.FAILED.value
    for what, column, only in (
        ("applied", Ioeventfd.applied_at, true()),
        ("removed", Ioeventfd.removed_at, true()),
        ("failed", Ioeventfd.updated_at, failed),
    ):
        # The time comes with the row, not from the ORM object: an object the session loaded
        # for an earlier kind keeps its old state (say removed_at None) while the worker moves on.
        query = select(Ioeventfd, column).where(
            column > since, column <= until, only, _vm(Ioeventfd.vm_id, vm_id)
        )
        for reg, at in db.execute(query):
            name = describe(reg.space, reg.addr, reg.len, reg.datamatch)
            label = f" ({reg.label})" if reg.label else ""
            why = f": {reg.errno} {reg.error or ''}".rstrip() if what == "failed" else ""
            yield AnnotationOut(
                id=f"reg:{reg.id}:{what}",
                kind="registration",
                time=at,
                text=f"registration {reg.id} {what}: {name}{label}{why}",
                vm_id=reg.vm_id,
            )


def workloads(db: Session, span: Range, vm_id: int | None) -> Iterator[AnnotationOut]:
    """Workload versions asked for in the range."""
    since, until = span
    query = select(Workload).where(
        Workload.created_at > since, Workload.created_at <= until, _vm(Workload.vm_id, vm_id)
    )
    for w in db.scalars(query):
        rate = sum(float(d.get("rate_hz", 0)) for d in w.doorbells)
        demo = " (demo)" if w.demo else ""
        yield AnnotationOut(
            id=f"workload:{w.id}",
            kind="workload",
            time=w.created_at,
            text=f"workload v{w.version}{demo}: {len(w.doorbells)} doorbells, {rate:g} writes/s",
            vm_id=w.vm_id,
        )


def workers(db: Session, span: Range, vm_id: int | None) -> Iterator[AnnotationOut]:
    """Worker starts, stops and failures; a start right after a start is a restart after the
    previous process died without stopping."""
    since, until = span
    query = select(WorkerEvent).where(WorkerEvent.at <= until, _vm(WorkerEvent.vm_id, vm_id))
    last: dict[int, str] = {}
    for e in db.scalars(query.order_by(WorkerEvent.at, WorkerEvent.id)):
        before, last[e.vm_id] = last.get(e.vm_id), e.event
        if e.at <= since:
            continue
        text = {
            "start": f"worker started (pid {e.pid} on {e.host})",
            "stop": "worker stopped",
            "failed": "worker failed to start its VM",
        }.get(e.event, f"worker {e.event}")
        if e.event == "start" and before == "start":
            text = f"worker restarted (pid {e.pid} on {e.host}); the previous one died"
        yield AnnotationOut(id=f"worker:{e.id}", kind="worker", time=e.at, text=text, vm_id=e.vm_id)


def benchmarks(db: Session, span: Range, vm_id: int | None) -> Iterator[AnnotationOut]:
    """Benchmark runs that overlap the range: from their start to their end."""
    since, until = span
    query = select(BenchmarkRun).where(
        BenchmarkRun.started_at <= until,
        or_(BenchmarkRun.finished_at.is_(None), BenchmarkRun.finished_at > since),
        _vm(BenchmarkRun.vm_id, vm_id, globals_too=True),
    )
    for run in db.scalars(query):
        assert run.started_at is not None  # the filter above
        paths = len(run.paths) or "every"
        yield AnnotationOut(
            id=f"bench:{run.id}",
            kind="benchmark",
            time=run.started_at,
            time_end=run.finished_at,
            text=f"benchmark {run.id} {run.state}: {paths} paths x {run.writes:,} writes"
            + (f" on {run.host}" if run.host else ""),
            vm_id=run.vm_id,
        )


SOURCES: dict[str, Callable[[Session, Range, int | None], Iterator[AnnotationOut]]] = {
    "note": notes,
    "registration": registrations,
    "workload": workloads,
    "worker": workers,
    "benchmark": benchmarks,
}


def find_annotations(
    db: Session, span: Range, vm_id: int | None, kinds: list[str], limit: int
) -> list[AnnotationOut]:
    """Every annotation of `kinds` in the range, oldest first; the newest `limit` if more."""
    found = [a for kind in kinds for a in SOURCES[kind](db, span, vm_id)]
    found.sort(key=lambda a: (a.time, a.id))
    return found[-limit:]
