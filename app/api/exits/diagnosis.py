"""The diagnosis of each doorbell of `/exits` (issue 18): why writes to a registered address
still exit (the kernel's rules, contract/rules.py), or what registering a hot one would save in
vCPU time, priced with this host's latest `iosignal bench`.

Registrations are the VM's own (owned: iosignal's active ones; observed: those the observer saw
the VMM make); an observed VM whose host no observer ever watched stays unknown (null).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.exits.page_reads import PageReads
from app.api.registrations import observed as observed_regs
from app.api.samples import store
from app.api.samples.window import Window
from app.schemas import ExitRow
from app.schemas_observed import Diagnosis
from contract.models import (
    BenchmarkResult,
    BenchmarkRun,
    BenchState,
    Feed,
    Ioeventfd,
    RegState,
    Vm,
    VmKind,
)
from contract.rules import RegistrationLike, covers, why_exits

HOT_EXITS_HZ = 10.0  # at ~10 us an exit, 0.01% of a vCPU: below it a doorbell is not "hot"
RUNS_LOOKED_AT = 20  # a host's newest bench runs searched for one that priced the space


class BenchCost(NamedTuple):
    """What one userspace exit costs more than an ioeventfd signal, on one host's bench."""

    run_id: int
    host: str
    saved_us: float  # userspace - ioeventfd: paced vCPU CPU time per write (else the rtt)


def bench_cost(db: Session, host: str, space: str) -> BenchCost | None:
    """From the host's newest finished bench run that measured both paths of `space`: the
    difference of their vCPU CPU time per write in paced passes (what registering saves a
    doorbell ringing at a rate, unmoved by other load on the host), or of their wall-clock rtt
    for runs stored before that was kept."""
    paths = {f"userspace-{space}": "userspace", f"ioeventfd-{space}": "ioeventfd"}
    runs = db.scalars(
        select(BenchmarkRun.id)
        .where(BenchmarkRun.host == host, BenchmarkRun.state == BenchState.DONE.value)
        .order_by(BenchmarkRun.id.desc())
        .limit(RUNS_LOOKED_AT)
    ).all()
    for run_id in runs:
        us = {
            paths[path]: cpu_ns / 1e3 if cpu_ns is not None else rtt
            for path, rtt, cpu_ns in db.execute(
                select(
                    BenchmarkResult.path, BenchmarkResult.rtt_us, BenchmarkResult.paced_cpu_ns
                ).where(BenchmarkResult.run_id == run_id, BenchmarkResult.path.in_(list(paths)))
            )
        }
        if len(us) == 2:
            return BenchCost(run_id, host, us["userspace"] - us["ioeventfd"])
    return None


def hot_unregistered(row: ExitRow, exits_hz: float, cost: BenchCost | None, host: str) -> Diagnosis:
    """What an ioeventfd at the row's address would save, or why there is no figure."""
    if cost is None:
        return Diagnosis(
            kind="hot_unregistered",
            text=f"hot and unregistered: {exits_hz:.4g} exits/s; no bench run on {host}, so no "
            "figure for what an ioeventfd would save (run iosignal bench there)",
        )
    share = max(0.0, exits_hz * cost.saved_us / 1e6)
    return Diagnosis(
        kind="hot_unregistered",
        text=f"hot and unregistered: an ioeventfd would save {100 * share:.3g}% of a vCPU "
        f"({exits_hz:.4g} exits/s x {cost.saved_us:.3g} us, from bench run {cost.run_id} on "
        f"{cost.host})",
        vcpu_share=share,
        bench_run=cost.run_id,
        bench_host=cost.host,
    )


Costs = dict[tuple[str, str], BenchCost | None]  # (host, space) -> its bench cost, per request


def diagnose(
    row: ExitRow,
    regs: list[RegistrationLike],
    values: list[int],
    host: str,
    db: Session,
    costs: Costs | None = None,
) -> Diagnosis | None:
    """The row's diagnosis, or None: its writes do not exit, or not often enough to matter.
    `costs`: bench costs already looked up (a page of many VMs asks once per host and space)."""
    exits_hz = row.userspace_hz if row.userspace_hz is not None else row.rate_hz
    if not exits_hz:
        return None
    miss = why_exits(regs, row.space, row.addr, row.len, values)
    if miss is not None:
        return Diagnosis(
            kind="registered_but_exits", reason=miss.rule, text=f"registered but exits: {miss.text}"
        )
    if any(r.addr == row.addr for r in regs) or exits_hz < HOT_EXITS_HZ:
        return None
    costs = {} if costs is None else costs
    if (host, row.space) not in costs:
        costs[(host, row.space)] = bench_cost(db, host, row.space)
    return hot_unregistered(row, exits_hz, costs[(host, row.space)], host)


def registrations(
    db: Session, vm: Vm, page: PageReads | None = None
) -> list[RegistrationLike] | None:
    """The VM's live registrations; None for an observed VM no observer watched the host of."""
    if vm.kind == VmKind.OBSERVED.value:
        page = page or PageReads()
        if page.known_since(db, vm.host) is None:
            return None
        if vm.id in page.vm_ids:
            return list(page.live[vm.id])  # type: ignore[arg-type]
        return list(observed_regs.live(db, vm.id))  # type: ignore[arg-type]
    active = Ioeventfd.state == RegState.ACTIVE.value
    return list(db.scalars(select(Ioeventfd).where(Ioeventfd.vm_id == vm.id, active)))


def read_exits(
    db: Session, vm: Vm, window: Window, page: PageReads | None = None
) -> dict[tuple[str, int, int], int]:
    """Per address, the reads there that exited to the VMM in `window` (the observer's count)."""
    if page is not None and vm.id in page.vm_ids:
        return page.reads[vm.id]
    boundary = vm.observed_rolled_up_until if window.tier == "minute" else None
    reads = store.totals(db, vm.id, Feed.READ_EXITS, boundary, window.since, window.until)
    return {key: total[0] for key, total in reads.items()}


def annotate(
    db: Session,
    vm: Vm,
    window: Window,
    rows: list[ExitRow],
    seconds: float,
    reads: dict[tuple[str, int, int], int],
    page: PageReads | None = None,
) -> None:
    """Give each row `registered`, its read exits (`read_exits`) and its diagnosis (`page`:
    reads made for a page of VMs at once, exits/page_reads.py)."""
    page = page or PageReads()
    regs = registrations(db, vm, page)
    if vm.id in page.vm_ids:
        values = page.values[vm.id]
    else:
        values = observed_regs.exit_values(db, vm.id, window.since)
    for row in rows:
        key = (row.space, row.addr, row.len)
        if key in reads:
            row.read_exits = reads[key]
            row.read_exits_hz = row.read_exits / seconds
        if regs is None:
            continue
        row.registered = any(covers(r, row.space, row.addr, row.len) for r in regs)
        row.diagnosis = diagnose(row, regs, values.get(key, []), vm.host, db, page.costs)
