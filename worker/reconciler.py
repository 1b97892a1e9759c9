"""Desired state in the database -> the KVM VM, with the kernel's verdict written back.

`apply_all` runs at start (every active and pending registration, the newest workload: a
restarted worker loses nothing); `apply_changes` runs whenever the `Waker` (worker/waker.py) says
something may have changed (pending and removing rows, a newer workload).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from sqlalchemy import Engine

from contract import rules
from contract.models import RegState
from worker import store
from worker.handle import MachineHandle
from worker.registry import AlreadyRegistered
from worker.workload import Doorbell

log = logging.getLogger("iosignal.reconciler")

_ALL = (RegState.ACTIVE.value, RegState.PENDING.value, RegState.REMOVING.value)
_CHANGES = (RegState.PENDING.value, RegState.REMOVING.value)


class Reconciler:
    """Applies one VM's desired registrations and workload to its `Machine`."""

    def __init__(self, engine: Engine, machine: MachineHandle, vm_id: int) -> None:
        self.engine, self.machine, self.vm_id = engine, machine, vm_id
        self.workload_version: int | None = None  # applied to this VM (a new VM rings nothing)

    def apply_all(self) -> int:
        """Apply every active/pending registration and the newest workload; returns rows seen."""
        return self._apply(store.registrations(self.engine, self.vm_id, _ALL))

    def apply_changes(self, registrations: bool = True, workload: bool = True) -> int:
        """Apply pending and removing registrations and a newer workload; returns rows seen.

        The control thread's probe already says which of the two changed: each one it rules out
        saves a query on the way to the verdict the app waits for.
        """
        rows = store.registrations(self.engine, self.vm_id, _CHANGES) if registrations else []
        return self._apply(rows, workload)

    def _apply(self, rows: list, workload: bool = True) -> int:
        for row in rows:
            if row.state == RegState.REMOVING.value:
                self._remove(row)
            else:
                self._register(row)
        if workload:
            self._workload()
        return len(rows)

    def _register(self, row: Any) -> None:
        try:
            self.machine.register(row.id, row.space, row.addr, row.len, row.datamatch)
        except AlreadyRegistered:
            pass  # assigned before, but the verdict was not written (database outage): now
        except OSError as exc:
            log.info("registration %d refused: %s", row.id, exc)
            name = rules.errno_name(exc.errno)
            store.mark_failed(self.engine, row.id, name, exc.strerror or str(exc))
            return
        store.mark_active(self.engine, row.id)

    def _remove(self, row: Any) -> None:
        if row.id in self.machine.registered():
            try:
                self.machine.unregister(row.id)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    log.error("unregistering %d failed: %s", row.id, exc)
                    return
        store.mark_removed(self.engine, row.id)

    def _workload(self) -> None:
        newest = store.newest_workload(self.engine, self.vm_id)
        if newest is None or newest[0] == self.workload_version:
            return
        version, doorbells = newest
        error = None
        try:
            self.machine.set_workload([Doorbell(**bell) for bell in doorbells])
        except (TypeError, ValueError) as exc:
            error = f"workload version {version} refused: {exc}"
            log.error("%s", error)
        store.set_workload_version(self.engine, self.vm_id, version, error)
        self.workload_version = version
