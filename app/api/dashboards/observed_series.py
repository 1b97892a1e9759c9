"""Panel reads of what `iosignal observe` counted: guest writes per second at an address, and the
share of them that stayed in the kernel (an ioeventfd or in-kernel device took them).

Only addresses that changed in an observer tick get a row, so a bucket's rate is its writes over
the bucket's length, not over the rows' intervals, and a bucket with no row is a gap. Share is
(writes - userspace) / writes per bucket, with no point where nothing was written. Rollups are
read before each VM's own observer mark (`vms.observed_rolled_up_until`); the reads themselves are
in app/api/samples/observed.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.dashboards.sample_series import NEEDS_OBSERVER, Series, exit_name, missing
from app.api.samples import observed
from app.api.samples.window import Window
from app.schemas_dash import SeriesRef
from contract.models import Vm

BUSIEST = 24  # addresses a panel without refs shows
Key = tuple[int, str, int, int]  # (vm_id, space, addr, len)
Sums = dict[int, list[int]]  # bucket start (ms) -> [writes, userspace]


def _read(
    db: Session, window: Window, refs: list[SeriesRef]
) -> tuple[dict[int, Vm], dict[Key, Sums]]:
    """The VMs the refs name and, per address, (writes, userspace) summed per bucket."""
    vm_ids = sorted({ref.vm_id for ref in refs if ref.vm_id is not None})
    vms = {vm.id: vm for vm in db.execute(select(Vm).where(Vm.id.in_(vm_ids))).scalars()}
    sums: dict[Key, Sums] = defaultdict(dict)
    for vm in vms.values():
        addrs = sorted({ref.addr or 0 for ref in refs if ref.vm_id == vm.id})
        rows = observed.bucketed(db, window, vm, addrs)
        for space, addr, len_, bucket, writes, userspace in rows:
            slot = sums[(vm.id, space, addr, len_)].setdefault(bucket, [0, 0])
            slot[0] += int(writes or 0)
            slot[1] += int(userspace or 0)
    return vms, sums


def _series(db: Session, window: Window, refs: Iterable[SeriesRef], value: Any) -> list[Series]:
    """One series per ref, `value(writes, userspace)` per bucket (None: no point)."""
    refs = list(refs)
    vms, sums = _read(db, window, refs)
    out = []
    for ref in refs:
        vm = vms.get(ref.vm_id or 0)
        if vm is None:
            name = exit_name(f"VM {ref.vm_id}", ref)
            out.append(missing(ref, name, f"VM {ref.vm_id} does not exist"))
            continue
        buckets = sums.get((vm.id, ref.space or "", ref.addr or 0, ref.len or 0), {})
        if not buckets and vm.kind != "observed" and vm.observed_rolled_up_until is None:
            why = f"{NEEDS_OBSERVER}: no observer has watched VM {vm.name} yet"
            out.append(missing(ref, exit_name(vm.name, ref), why))
            continue
        points = [(t, value(*buckets[t])) for t in sorted(buckets)]
        points = [(t, v) for t, v in points if v is not None]
        name = exit_name(vm.name, ref)
        out.append(
            {"ref": ref.key(), "name": name, "t": [t for t, _ in points]}
            | {"v": [v for _, v in points]}
        )
    return out


def read_writes(db: Session, window: Window, refs: Iterable[SeriesRef]) -> list[Series]:
    """Guest writes per second at each ref's address, as the observer counted them."""
    return _series(db, window, refs, lambda writes, _userspace: writes / window.step_s)


def read_share(db: Session, window: Window, refs: Iterable[SeriesRef]) -> list[Series]:
    """The share (0..1) of each address's writes that did not exit to userspace."""
    return _series(
        db,
        window,
        refs,
        lambda writes, userspace: (writes - userspace) / writes if writes else None,
    )


def busiest(db: Session, window: Window) -> list[SeriesRef]:
    """The refs of a writes or share panel that names none: the addresses written most in the
    window (ranked on raw samples, or on rollups for a minute-tier window)."""
    return [
        SeriesRef(vm_id=v, space=s, addr=a, len=n)
        for v, s, a, n in observed.busiest(db, window, BUSIEST)
    ]
