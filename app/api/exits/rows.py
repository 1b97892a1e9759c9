"""The rows of `GET /api/vms/{id}/exits` (and of the host view): per address, userspace exits
and, where `iosignal observe` watched the VM, its writes split into in-kernel and userspace.

An owned VM's `exits` come from its worker's exit counter; an observed VM has no worker, so its
`exits` are the observer's userspace count. Each source's rate is over the part of the window it
was counting, so a worker or observer that started 10 s ago is not averaged over a minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from app.api.exits import diagnosis
from app.api.exits.page_reads import PageReads
from app.api.samples import observed
from app.api.samples.exits import exits_in_window, sampled_seconds
from app.api.samples.observed import Addr, Counts, Span
from app.api.samples.window import Window
from app.schemas import ExitRow
from contract.models import Vm, VmKind

MIN_SECONDS = 1e-3


class VmTimes(Protocol):
    """What `observed_seconds` reads of a VM: a `Vm`, or a row of just these columns."""

    kind: str
    created_at: datetime
    ended_at: datetime | None
    heartbeat_at: datetime | None


def observed_seconds(vm: VmTimes, window: Window, span: Span | None) -> float:
    """Seconds of `window` the observer was counting this VM.

    An observed VM was watched from its first sighting (`created_at`) to its end or the
    observer's last heartbeat; ticks where an address saw no write leave no row, so the rows'
    own span would overstate a quiet VM's rate. An owned VM's row is older than any observer, so
    its rows' span is all there is. Long (rollup) windows use their whole span.
    """
    if window.tier != "raw":
        return window.span_s
    start, end = window.until, window.since
    if vm.kind == VmKind.OBSERVED.value:
        start = max(window.since, vm.created_at)
        end = min(window.until, vm.ended_at or vm.heartbeat_at or window.until)
    if span is not None:
        start = min(start, span.first - timedelta(seconds=span.interval_s))
        end = max(end, span.last)
    if end <= start:
        return window.span_s if span is None else MIN_SECONDS
    seconds = (min(end, window.until) - max(start, window.since)).total_seconds()
    return max(seconds, MIN_SECONDS)


def with_observed(row: ExitRow, counts: Counts, seconds: float) -> ExitRow:
    """`row` with the observer's writes, userspace and in-kernel counts and rates."""
    in_kernel = counts.writes - counts.userspace
    row.writes, row.userspace, row.in_kernel = counts.writes, counts.userspace, in_kernel
    row.writes_hz = counts.writes / seconds
    row.userspace_hz = counts.userspace / seconds
    row.in_kernel_hz = in_kernel / seconds
    row.in_kernel_share = in_kernel / counts.writes if counts.writes else None
    return row


def exit_rows(
    db: Session,
    vm: Vm,
    window: Window,
    counts: dict[Addr, Counts],
    span: Span | None,
    page: PageReads | None = None,
) -> list[ExitRow]:
    """Every address of `vm` that exited, was written or read-exited in `window`, busiest first
    (writes' exits, writes, then read exits); `counts`
    and `span` are the observer's figures for the window (observed.totals, observed.spans),
    `page` the reads made for a page of VMs at once (exits/page_reads.py)."""
    seen = observed_seconds(vm, window, span)
    counts = {key: c for key, c in counts.items() if c.writes}  # only read there: no doorbell
    rows: dict[Addr, ExitRow] = {}
    if vm.kind == VmKind.OBSERVED.value:
        for (space, addr, len_), c in counts.items():
            row = ExitRow(
                space=space,
                addr=addr,
                len=len_,
                exits=c.userspace,
                rate_hz=c.userspace / seen,
                registered=None,  # diagnosis.annotate: from the registrations seen
            )
            rows[(space, addr, len_)] = with_observed(row, c, seen)
    else:
        seconds = sampled_seconds(db, vm.id, window)
        for (space, addr, len_), count in exits_in_window(db, vm.id, window).items():
            rows[(space, addr, len_)] = ExitRow(
                space=space,
                addr=addr,
                len=len_,
                exits=count,
                rate_hz=count / seconds,
                registered=None,
            )
        for (space, addr, len_), c in counts.items():
            row = rows.get((space, addr, len_)) or ExitRow(
                space=space,
                addr=addr,
                len=len_,
                exits=0,
                rate_hz=0.0,
                registered=None,
            )
            rows[(space, addr, len_)] = with_observed(row, c, seen)
    # An address the guest only reads that exits too (an ISR or a timer the VMM serves in
    # userspace) is a row of its own: no doorbell to register, but exits the page should show.
    reads = diagnosis.read_exits(db, vm, window, page)
    for key in reads:
        if key not in rows:
            space, addr, len_ = key
            row = ExitRow(space=space, addr=addr, len=len_, exits=0, rate_hz=0.0, registered=None)
            rows[key] = with_observed(row, Counts(0, 0), seen)
    diagnosis.annotate(db, vm, window, list(rows.values()), seen, reads, page)
    return sorted(
        rows.values(),
        key=lambda r: (-r.exits, -(r.writes or 0), -(r.read_exits or 0), r.space, r.addr, r.len),
    )


def vm_exit_rows(db: Session, vm: Vm, window: Window) -> list[ExitRow]:
    """`exit_rows` of one VM, reading the observer's figures for it."""
    span = None
    if window.tier == "raw":  # a rollup window's rate is over its whole span
        span = observed.spans(db, [vm.id], window.since, window.until).get(vm.id)
    return exit_rows(db, vm, window, observed.totals(db, vm, window), span)
