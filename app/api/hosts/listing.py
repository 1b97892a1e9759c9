"""The host view at fleet scale (issue 19): one page of VMs out of thousands, sorted and searched.

Which VMs and in what order is app/api/hosts/order.py; only the page's VMs are decoded, in a
handful of queries for the whole page (app/api/exits/page_reads.py), for their busiest doorbells and
diagnoses. An owned VM's exits are its worker's counter: sorting by a figure computes those few
in full, as before.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.api.exits.page_reads import PageReads, prefetch
from app.api.exits.rows import exit_rows
from app.api.hosts import order as hostorder
from app.api.hosts.order import Light
from app.api.samples import observed
from app.api.samples.window import Window
from app.api.vms.liveness import vm_out
from app.schemas import ExitRow
from app.schemas_hosts import HostPage, HostSummary, HostVmOut
from contract.models import Vm, VmKind

BUSIEST = 5  # doorbells shown per VM


def _rank(row: ExitRow) -> tuple[bool, float, int]:
    """A registration that does not take its writes first, then the most vCPU time to save."""
    assert row.diagnosis is not None
    return (
        row.diagnosis.kind != "registered_but_exits",
        -(row.diagnosis.vcpu_share or 0.0),
        -row.exits,
    )


def host_vm(vm: Vm, rows: list[ExitRow]) -> HostVmOut:
    """The VM's row of the host view from its `/exits` rows."""
    watched = [r for r in rows if r.writes is not None]
    writes = sum(r.writes or 0 for r in watched)
    in_kernel = sum(r.in_kernel or 0 for r in watched)
    busiest = sorted(rows, key=lambda r: (-(r.writes or 0), -r.exits, r.space, r.addr))
    diagnosed = sorted((r for r in rows if r.diagnosis is not None), key=_rank)
    return HostVmOut(
        **vm_out(vm).model_dump(),
        writes_hz=sum(r.writes_hz or 0.0 for r in watched) if watched else None,
        userspace_hz=sum(r.userspace_hz or 0.0 for r in watched) if watched else None,
        in_kernel_share=in_kernel / writes if writes else None,
        exits_hz=sum(r.rate_hz for r in rows),
        observed=bool(watched),
        busiest=busiest[:BUSIEST],
        diagnoses=len(diagnosed),
        top_diagnosis=diagnosed[0] if diagnosed else None,
    )


def _summaries(vms: list[Light]) -> list[HostSummary]:
    counts: dict[str, list[int]] = {}
    for v in vms:
        counts.setdefault(v.host, [0, 0])[v.kind != VmKind.OWNED.value] += 1
    return [HostSummary(host=h, owned=o, observed=n) for h, (o, n) in sorted(counts.items())]


def page(
    db: Session,
    window: Window,
    *,
    shown_after: datetime,
    host: str | None,
    kind: str | None,
    q: str | None,
    sort: str,
    order: str,
    number: int,
    per_page: int,
) -> HostPage:
    """One page of the host view: every VM that matches, sorted; the page's in full."""
    shown_vms = or_(Vm.ended_at.is_(None), Vm.ended_at > shown_after)
    if kind:
        shown_vms = and_(shown_vms, Vm.kind == kind)
    query = select(Vm.id, Vm.host, Vm.kind, Vm.name, Vm.comm, Vm.pid).where(shown_vms)
    times: dict[int, Any] = {}
    if sort != "host":  # the figures need each VM's times (exits/rows.py observed_seconds)
        query = query.add_columns(Vm.created_at, Vm.ended_at, Vm.heartbeat_at)
    rows = db.execute(query).all()
    everyone = [Light(*row[:6]) for row in rows]
    if sort != "host":
        times = {row.id: row for row in rows}
    match = hostorder.matcher(db, q) if q else None
    chosen = [v for v in everyone if (not host or v.host == host) and (not match or match(v))]
    full: dict[int, HostVmOut] = {}  # VMs already read in full
    reads = PageReads()
    if sort != "host":
        chosen = _with_figures(db, window, chosen, times, full, reads)
    ranked = hostorder.ordered(chosen, sort, order)
    shown = ranked[(number - 1) * per_page : number * per_page]
    wanted = [v.id for v in shown if v.id not in full]
    loaded = {vm.id: vm for vm in db.scalars(select(Vm).where(Vm.id.in_(wanted)))}
    costs = reads.costs
    reads = prefetch(db, list(loaded.values()), window)
    reads.costs |= costs
    vms = [full.get(v.id) or _full(db, loaded[v.id], window, reads) for v in shown]
    return HostPage(
        total=len(ranked),
        page=number,
        per_page=per_page,
        pages=max(1, math.ceil(len(ranked) / per_page)),
        sort=sort,
        order=order,
        hosts=_summaries(everyone),
        vms=vms,
    )


def _with_figures(
    db: Session,
    window: Window,
    vms: list[Light],
    times: dict[int, Any],
    full: dict[int, HostVmOut],
    reads: PageReads,
) -> list[Light]:
    """`vms` with their figures: observed VMs' from the stored sums, owned VMs' in full."""
    sums = observed.sums_by_vm(db, window)
    out = []
    for v in vms:
        if v.kind == VmKind.OWNED.value:
            full[v.id] = got = _full(db, db.get_one(Vm, v.id), window, reads)
            userspace = got.exits_hz if got.userspace_hz is None else got.userspace_hz
            figures: hostorder.Figures = (got.writes_hz, userspace, got.in_kernel_share)
        else:
            figures = hostorder.observed_figures(db, times[v.id], window, sums.get(v.id))
        out.append(Light(v.id, v.host, v.kind, v.name, v.comm, v.pid, *figures))
    return out


def _full(db: Session, vm: Vm, window: Window, reads: PageReads) -> HostVmOut:
    """A VM's row with its busiest doorbells and diagnoses: its ticks decoded."""
    if vm.id in reads.vm_ids:
        counts, span = reads.observed[vm.id], reads.spans.get(vm.id)
    else:
        counts = observed.totals(db, vm, window)
        span = None
        if window.tier == "raw":
            span = observed.spans(db, [vm.id], window.since, window.until).get(vm.id)
    return host_vm(vm, exit_rows(db, vm, window, counts, span, reads))
