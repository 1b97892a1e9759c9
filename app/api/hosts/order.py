"""The host view's choice of VMs: which match a search, and their order (app/api/hosts/listing.py).

Sorting by a figure needs every VM's writes/s, userspace exits/s and in-kernel share: they come
from the ticks' stored sums (observed.sums_by_vm: one GROUP BY over an index range), never from
decoding 5,000 VMs' ticks. By host, no figure is needed but the page's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.exits.rows import observed_seconds
from app.api.samples import observed
from app.api.samples.observed import Span
from app.api.samples.window import Window
from contract.models import Feed, Series, Vm, VmKind
from contract.samples import VmSums

SORTS = ("host", "writes", "userspace", "share")
_HEX = re.compile(r"0x[0-9a-f]+")
Figures = tuple[float | None, float | None, float | None]  # writes/s, userspace/s, share


class Light(NamedTuple):
    """A VM's columns the sort and the search read, and (sorting by one) its figures."""

    id: int
    host: str
    kind: str
    name: str
    comm: str | None
    pid: int | None
    writes_hz: float | None = None
    userspace_hz: float | None = None  # else (owned, no observer) the worker's exits/s
    in_kernel_share: float | None = None


def span_of(sums: VmSums | None) -> Span | None:
    if sums is None or sums.earliest is None or sums.latest is None:
        return None
    return Span(sums.earliest, sums.latest, sums.interval_s)


def observed_figures(db: Session, row: Any, window: Window, sums: VmSums | None) -> Figures:
    """writes/s, userspace exits/s and in-kernel share of one VM, as host_vm computes them."""
    if sums is not None and sums.unsummed:  # ticks stored before the sums: decode them
        vm = db.get_one(Vm, row.id)
        counts = observed.totals(db, vm, window)
        writes = sum(c.writes for c in counts.values())
        userspace = sum(c.userspace for c in counts.values() if c.writes)
    else:
        writes, userspace = (sums.first, sums.second) if sums else (0, 0)
    if not writes:
        return None, None, None
    seen = observed_seconds(row, window, span_of(sums))
    return writes / seen, userspace / seen, (writes - userspace) / writes


def address_of(q: str) -> int | None:
    """The guest address a search names: a 0x... token, or a decimal number."""
    found = _HEX.search(q.lower())
    if found:
        return int(found.group(), 16)
    return int(q) if q.isdigit() else None


def matcher(db: Session, q: str) -> Callable[[Any], bool]:
    """The search: host, command or name containing `q`, the pid, or a doorbell's address."""
    text = q.lower()
    addr = address_of(q)
    at_addr: set[int] = set()
    if addr is not None and addr < 1 << 64:
        at_addr = set(
            db.scalars(
                select(Series.vm_id)
                .where(Series.addr == addr)
                .where(Series.feed.in_([int(Feed.OBSERVED), int(Feed.EXITS)]))
                .distinct()
            )
        )
    pid = int(q) if q.isdigit() else None

    def match(row: Any) -> bool:
        names = (row.host, row.comm or "", row.name)
        return any(text in n.lower() for n in names) or row.pid == pid or row.id in at_addr

    return match


def _sort_key(sort: str) -> Callable[[Light], Any]:
    if sort == "host":
        return lambda v: (v.host, v.kind != VmKind.OWNED.value, v.id)
    field = {"writes": "writes_hz", "userspace": "userspace_hz", "share": "in_kernel_share"}[sort]
    return lambda v: getattr(v, field)


def ordered(vms: list[Light], sort: str, order: str) -> list[Light]:
    """Sorted by `sort` in `order`; a VM without the figure last, in host order."""
    key = _sort_key(sort)
    known = [v for v in vms if key(v) is not None]
    unknown = sorted((v for v in vms if key(v) is None), key=_sort_key("host"))
    known.sort(key=lambda v: (v.host, v.id))  # ties stay in host order: a stable sort
    known.sort(key=key, reverse=order == "desc")
    return known + unknown
