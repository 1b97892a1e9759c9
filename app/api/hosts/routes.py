"""The host view: every host, every VM on it (owned and observed), each with its busiest doorbells
and the share of its writes that stayed in the kernel, over a short recent window."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import or_, select

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep
from app.api.exits.rows import exit_rows
from app.api.samples import observed
from app.api.samples.window import window_for
from app.api.vms.liveness import vm_out
from app.schemas import ExitRow
from app.schemas_hosts import HostOut, HostVmOut
from contract.models import Vm, utcnow

router = APIRouter(tags=["vms"], dependencies=[Authorized], responses=AUTH_RESPONSES)
BUSIEST = 5
ENDED_SHOWN = timedelta(hours=1)  # an observed VM that ended longer ago leaves the view


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


@router.get("/hosts", response_model=list[HostOut])
def list_hosts(
    db: SessionDep,
    since: Annotated[str, Query(description='the window: "-10s", "-1m", ISO 8601')] = "-10s",
) -> list[HostOut]:
    """Every host and its VMs (owned first, then observed; observed VMs that ended more than an
    hour ago left out), each with writes/s, userspace exits/s, in-kernel share and its busiest
    doorbells over the window. The dashboard's Host view refreshes it every two seconds."""
    window = window_for(since, None)
    vms = list(
        db.scalars(
            select(Vm)
            .where(or_(Vm.ended_at.is_(None), Vm.ended_at > utcnow() - ENDED_SHOWN))
            .order_by(Vm.host, Vm.kind.desc(), Vm.id)  # "owned" sorts after "observed": desc
        )
    )
    ids = [vm.id for vm in vms]
    if window.tier == "raw":
        counts = observed.totals_of_vms(db, ids, window.since)
        spans = observed.spans(db, ids, window.since, window.until)
    else:
        counts = {vm.id: observed.totals(db, vm, window) for vm in vms}
        spans = {}
    hosts: dict[str, list[HostVmOut]] = defaultdict(list)
    for vm in vms:
        rows = exit_rows(db, vm, window, counts.get(vm.id, {}), spans.get(vm.id))
        hosts[vm.host].append(host_vm(vm, rows))
    return [HostOut(host=host, vms=list(items)) for host, items in hosts.items()]
