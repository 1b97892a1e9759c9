"""The series of signals and exits panels, from the worker's samples, and the shape every panel
series has.

Signals and exits are read once per VM for all the refs of every panel (the tier and step of
`app.api.samples.window`), decoded and bucketed by app/api/samples/store.py; the observer's
series are in observed_series.py, benchmarks in bench_series.py. A ref naming something that
does not exist gives a series with `missing` saying so, never an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.samples import store
from app.api.samples.store import Buckets
from app.api.samples.window import Window, boundary
from app.schemas_dash import SeriesRef
from contract.models import Feed, Ioeventfd, Vm

Series = dict[str, Any]  # {"ref", "name", "t", "v"} and "missing" when there is nothing to read
NEEDS_OBSERVER = "needs iosignal observe"


def series(ref: SeriesRef, name: str, buckets: Buckets | None, per_step: float = 0.0) -> Series:
    """A series from its buckets: count / measured seconds, or count / `per_step` if given."""
    buckets = buckets or {}
    t = sorted(buckets)
    v = [
        (c / per_step if per_step else c / s if s > 0 else 0.0)
        for c, s in map(buckets.__getitem__, t)
    ]
    return {"ref": ref.key(), "name": name, "t": t, "v": v}


def missing(ref: SeriesRef, name: str, why: str) -> Series:
    """An empty series that says why it is empty."""
    return {"ref": ref.key(), "name": name, "t": [], "v": [], "missing": why}


def read_signals(db: Session, window: Window, refs: Iterable[SeriesRef]) -> list[Series]:
    """Signals per second of registrations, one series per ref."""
    refs = list(refs)
    ids = sorted({ref.ioeventfd_id for ref in refs if ref.ioeventfd_id is not None})
    regs = {
        row.id: row
        for row in db.execute(
            select(Ioeventfd.id, Ioeventfd.vm_id, Ioeventfd.space, Ioeventfd.addr)
            .add_columns(Ioeventfd.len, Ioeventfd.label, Vm.name.label("vm"))
            .join(Vm, Vm.id == Ioeventfd.vm_id)
            .where(Ioeventfd.id.in_(ids))
        )
    }
    by_vm: dict[int, set[int]] = defaultdict(set)
    for reg in regs.values():
        by_vm[reg.vm_id].add(reg.id)
    sums: dict[int, Buckets] = {}
    for vm_id, reg_ids in by_vm.items():
        bounds = boundary(db, vm_id, window), window.since, window.until
        sums.update(
            store.bucketed(
                db, vm_id, Feed.SIGNALS, reg_ids, window.step_s, *bounds, idle_seconds=True
            )
        )
    out = []
    for ref in refs:
        found = regs.get(ref.ioeventfd_id or 0)
        if found is None:
            why = f"registration {ref.ioeventfd_id} does not exist"
            out.append(missing(ref, f"registration {ref.ioeventfd_id}", why))
            continue
        what = found.label or address(found.space, found.addr, found.len)
        out.append(series(ref, f"{found.vm}: {what} (#{found.id})", sums.get(found.id)))
    return out


def address(space: str | None, addr: int | None, len_: int | None) -> str:
    """`pio 0x6000 len 2`: how a person names an address."""
    return f"{space} 0x{addr or 0:x} len {len_}"


def exit_name(vm: str, ref: SeriesRef) -> str:
    """`vm0: pio 0x6000 len 2`."""
    return f"{vm}: {address(ref.space, ref.addr, ref.len)}"


def read_exits(db: Session, window: Window, refs: Iterable[SeriesRef]) -> list[Series]:
    """Userspace exits per second of addresses, one series per ref."""
    refs = list(refs)
    vm_ids = sorted({ref.vm_id for ref in refs if ref.vm_id is not None})
    names = {
        vm_id: name for vm_id, name in db.execute(select(Vm.id, Vm.name).where(Vm.id.in_(vm_ids)))
    }
    sums: dict[tuple[Any, ...], Buckets] = {}
    for vm_id in names:
        wanted = {(r.space or "", r.addr or 0, r.len or 0) for r in refs if r.vm_id == vm_id}
        bounds = boundary(db, vm_id, window), window.since, window.until
        found = store.bucketed(
            db, vm_id, Feed.EXITS, wanted, window.step_s, *bounds, idle_seconds=False
        )
        sums.update({(vm_id, *key): buckets for key, buckets in found.items()})
    # Only ticks with exits are stored: a rollup's seconds cover those ticks, not its minute.
    per_step = window.step_s if window.tier == "minute" else 0.0
    out = []
    for ref in refs:
        vm = names.get(ref.vm_id or 0)
        if vm is None:
            name = exit_name(f"VM {ref.vm_id}", ref)
            out.append(missing(ref, name, f"VM {ref.vm_id} does not exist"))
            continue
        key = (ref.vm_id or 0, ref.space or "", ref.addr or 0, ref.len or 0)
        out.append(series(ref, exit_name(vm, ref), sums.get(key), per_step))
    return out
