"""The worker's side of the database contract: its VM row, verdicts, workloads, benchmarks.

Every write is conditional on the state the worker saw, so a change the app made meanwhile
(e.g. `removing` while a registration was being applied) is never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Row, case, select, text, update
from sqlalchemy.orm import Session

from contract.models import (
    BenchmarkResult,
    BenchmarkRun,
    BenchState,
    Ioeventfd,
    RegState,
    Vm,
    VmState,
    WorkerEvent,
    WorkerHealth,
    Workload,
    utcnow,
)

_REG_COLUMNS = (
    Ioeventfd.id,
    Ioeventfd.space,
    Ioeventfd.addr,
    Ioeventfd.len,
    Ioeventfd.datamatch,
    Ioeventfd.state,
)


@contextmanager
def _one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection whose every statement is its own transaction: a registration's verdict
    path (probe, read the changes, write the verdict) then costs no BEGIN/COMMIT round trips."""
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


class VmInUse(RuntimeError):
    """Another live worker owns the VM name."""


def _live_owner(vm: Vm, host: str, fresh_s: float) -> bool:
    # A fresh heartbeat from another process: alive unless it is on this host and gone
    # (a kill -9 then an immediate restart must be able to take the row over).
    if vm.state != VmState.RUNNING or vm.heartbeat_at is None or vm.pid == os.getpid():
        return False
    if (utcnow() - vm.heartbeat_at).total_seconds() >= fresh_s:
        return False
    if vm.host == host and vm.pid:
        try:
            os.kill(vm.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def claim_vm(engine: Engine, name: str, info: dict[str, Any], fresh_s: float = 0.0) -> int:
    """Create or take over the `vms` row named `name` for this process; returns its id.

    Raises VmInUse while another worker heartbeats it (within `fresh_s`). `workload_version`
    is reset to 0: a new VM rings nothing until the worker applies the newest.
    """
    now = utcnow()
    fields = {
        "host": info.get("host", ""),
        "kernel": info.get("kernel", ""),
        "capabilities": {"api_version": info.get("api_version"), **info.get("capabilities", {})},
        # The app checks doorbells and registrations against the guest's RAM (MMIO inside RAM
        # never exits, so such a doorbell could never ring, such a registration never fire).
        "mem_size": info.get("mem_size"),
        "cpu_model": info.get("cpu_model", ""),
        "kvm_module": info.get("kvm_module", ""),
        "kvm_nested": info.get("kvm_nested"),
        "state": VmState.RUNNING.value,
        "error": None,
        "pid": os.getpid(),
        "workload_version": 0,
        "started_at": now,
        "heartbeat_at": now,
        **WorkerHealth(missed_ticks=0, dropped_samples=0, lock_errors=0),  # a new process
    }
    with Session(engine) as db, db.begin():
        vm = db.scalars(select(Vm).where(Vm.name == name)).one_or_none()
        if vm is not None and _live_owner(vm, fields["host"], fresh_s):
            raise VmInUse(
                f"VM name {name!r} is in use by worker pid {vm.pid} on {vm.host}: "
                "give this worker another IOSIGNAL_VM_NAME or stop that one"
            )
        if vm is None:
            vm = Vm(name=name)
            db.add(vm)
        for key, value in fields.items():
            setattr(vm, key, value)
        db.flush()
        # The row keeps only this process; the event keeps it for charts (annotations).
        db.add(
            WorkerEvent(vm_id=vm.id, event="start", at=now, host=fields["host"], pid=os.getpid())
        )
        # A benchmark this VM's previous process was running died with it.
        db.execute(
            update(BenchmarkRun)
            .where(BenchmarkRun.vm_id == vm.id, BenchmarkRun.state == BenchState.RUNNING.value)
            .values(
                state=BenchState.FAILED.value,
                error="the worker stopped during the run",
                finished_at=now,
            )
        )
        return vm.id


def worker_event(engine: Engine, vm_id: int, event: str) -> None:
    """Record that this worker process left its VM: `stop` (cleanly) or `failed`."""
    with Session(engine) as db, db.begin():
        host = db.scalar(select(Vm.host).where(Vm.id == vm_id)) or ""
        db.add(WorkerEvent(vm_id=vm_id, event=event, host=host, pid=os.getpid()))


def heartbeat(
    engine: Engine,
    vm_id: int,
    state: VmState,
    error: str | None = None,
    health: WorkerHealth | None = None,
) -> None:
    """Mark the worker alive now, with the VM's state (and its error, when it has one) and the
    worker's own health counters."""
    values: dict[str, Any] = {"heartbeat_at": utcnow(), "state": state, **(health or {})}
    if error is not None:
        values["error"] = error
    with engine.begin() as conn:
        conn.execute(update(Vm).where(Vm.id == vm_id).values(**values))


def registrations(engine: Engine, vm_id: int, states: tuple[str, ...]) -> list[Row]:
    """The VM's registrations in `states`: active first (they were accepted before), then by id."""
    order = case((Ioeventfd.state == RegState.ACTIVE.value, 0), else_=1)
    with _one_statement(engine) as conn:
        return list(
            conn.execute(
                select(*_REG_COLUMNS)
                .where(Ioeventfd.vm_id == vm_id, Ioeventfd.state.in_(states))
                .order_by(order, Ioeventfd.id)
            )
        )


_PROBE = text(
    "SELECT (SELECT count(*) FROM ioeventfds WHERE vm_id = :vm AND state IN "
    "(:pending, :removing)), (SELECT max(version) FROM workloads WHERE vm_id = :vm), "
    "(SELECT min(id) FROM benchmark_runs WHERE state = :queued AND "
    "(vm_id = :vm OR vm_id IS NULL))"
).bindparams(
    pending=RegState.PENDING.value,
    removing=RegState.REMOVING.value,
    queued=BenchState.QUEUED.value,
)


def probe(engine: Engine, vm_id: int) -> tuple[int, int | None, int | None]:
    """(pending+removing registrations, newest workload version, oldest queued benchmark id).

    One indexed round trip: the SQLite worker asks this 20 times a second.
    """
    with _one_statement(engine) as conn:
        changes, version, queued = conn.execute(_PROBE, {"vm": vm_id}).one()
    return changes, version, queued


def _set_state(engine: Engine, rid: int, from_states: tuple[str, ...], **values: Any) -> bool:
    with _one_statement(engine) as conn:  # one UPDATE: atomic on its own
        result = conn.execute(
            update(Ioeventfd)
            .where(Ioeventfd.id == rid, Ioeventfd.state.in_(from_states))
            .values(**values)
        )
        return result.rowcount == 1


_APPLYING = (RegState.PENDING.value, RegState.ACTIVE.value)


def mark_active(engine: Engine, rid: int) -> bool:
    """The kernel assigned it; False if the app changed the row meanwhile."""
    return _set_state(
        engine,
        rid,
        _APPLYING,
        state=RegState.ACTIVE.value,
        applied_at=utcnow(),
        errno=None,
        error=None,
    )


def mark_failed(engine: Engine, rid: int, errno_name: str, message: str) -> bool:
    """The kernel (or a stricter rule) refused it, with the errno name, e.g. "EEXIST"."""
    return _set_state(
        engine, rid, _APPLYING, state=RegState.FAILED.value, errno=errno_name, error=message
    )


def mark_removed(engine: Engine, rid: int) -> bool:
    """Deassigned (or never assigned on this VM): removal done."""
    return _set_state(
        engine, rid, (RegState.REMOVING.value,), state=RegState.REMOVED.value, removed_at=utcnow()
    )


def newest_workload(engine: Engine, vm_id: int) -> tuple[int, list[dict[str, Any]]] | None:
    """(version, doorbells) of the VM's newest workload, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(Workload.version, Workload.doorbells)
            .where(Workload.vm_id == vm_id)
            .order_by(Workload.version.desc())
            .limit(1)
        ).first()
    return None if row is None else (row.version, row.doorbells)


def set_workload_version(engine: Engine, vm_id: int, version: int, error: str | None) -> None:
    """Record which workload version the guest rings now (error says why one was refused)."""
    with engine.begin() as conn:
        conn.execute(update(Vm).where(Vm.id == vm_id).values(workload_version=version, error=error))


def claim_benchmark(engine: Engine, vm_id: int) -> BenchmarkRun | None:
    """Take the oldest queued benchmark for this VM (or any VM) and mark it running."""
    with Session(engine, expire_on_commit=False) as db, db.begin():
        run = db.scalars(
            select(BenchmarkRun)
            .where(
                BenchmarkRun.state == BenchState.QUEUED.value,
                (BenchmarkRun.vm_id == vm_id) | BenchmarkRun.vm_id.is_(None),
            )
            .order_by(BenchmarkRun.id)
            .limit(1)
        ).first()
        if run is None:
            return None
        # Conditional update: two workers polling the same queue claim a run once.
        result = db.execute(
            update(BenchmarkRun)
            .where(BenchmarkRun.id == run.id, BenchmarkRun.state == BenchState.QUEUED.value)
            .values(state=BenchState.RUNNING.value, vm_id=vm_id, started_at=utcnow(), progress=0.0)
        )
        claimed = cast("CursorResult[Any]", result).rowcount  # an UPDATE's result has one
        return run if claimed == 1 else None


def benchmark_progress(engine: Engine, run_id: int, progress: float) -> None:
    """Record a running benchmark's progress (0..1)."""
    with engine.begin() as conn:
        conn.execute(
            update(BenchmarkRun).where(BenchmarkRun.id == run_id).values(progress=progress)
        )


def finish_benchmark(engine: Engine, run_id: int, result: dict | None, error: str | None) -> None:
    """Store a benchmark's results (one row per path), or why it failed."""
    with Session(engine) as db, db.begin():
        run = db.get_one(BenchmarkRun, run_id)  # NoResultFound if it was deleted meanwhile
        run.finished_at = utcnow()
        if result is None:
            run.state, run.error = BenchState.FAILED.value, error
            return
        run.state, run.progress = BenchState.DONE.value, 1.0
        run.host, run.kernel = result.get("host", ""), result.get("kernel", "")
        run.cpu_model = result.get("cpu_model", "")
        run.kvm_module = result.get("kvm_module", "")
        run.kvm_nested = result.get("kvm_nested")
        for r in result["results"]:
            run.results.append(
                BenchmarkResult(
                    path=r["path"],
                    writes=r["writes"],
                    iops=r["iops"],
                    rtt_us=r["rtt_us"],
                    rtt_us_min=r["rtt_us_min"],
                    rtt_us_max=r["rtt_us_max"],
                    guest_rtt_us=r.get("guest_rtt_us"),
                    rtt_us_p99=r.get("rtt_us_p99"),
                    paced_cpu_ns=r.get("paced_cpu_ns"),
                )
            )
