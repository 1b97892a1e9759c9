"""The worker's control thread: reconcile on NOTIFY/poll, heartbeat, benchmark polling.

Every database call here rides out an outage: it is logged once and retried, never fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.config import HEARTBEAT_INTERVAL_S, Settings
from contract.models import VmState, WorkerHealth
from daemon.dberrors import reason
from worker import store
from worker.benchjobs import BenchJobs
from worker.handle import MachineHandle
from worker.reconciler import Reconciler
from worker.waker import Waker

log = logging.getLogger("iosignal.worker")
T = TypeVar("T")


def until_db(stop: threading.Event, what: str, fn: Callable[[], T]) -> T | None:
    """Call `fn` until the database answers (logging the outage once) or `stop` is set."""
    logged = False
    while not stop.is_set():
        try:
            return fn()
        except SQLAlchemyError as exc:
            if not logged:
                log.error("%s: database unavailable, retrying: %s", what, reason(exc))
                logged = True
            stop.wait(1.0)
    return None


class Control:
    """The control thread: reconcile, heartbeat and benchmark polling, riding out outages."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        machine: MachineHandle,
        vm_id: int,
        health: Callable[[], WorkerHealth] | None = None,
    ) -> None:
        self.engine, self.machine, self.vm_id = engine, machine, vm_id
        self.health = health  # the ticker's and writer's counters, stored with each heartbeat
        self.reconciler = Reconciler(engine, machine, vm_id)
        self.waker = Waker(
            settings.database_url, settings.poll_interval_s, vm_id=vm_id, wakeup=settings.wakeup
        )
        self.waker.open_fifo()  # before `apply_all`: a poke meanwhile wakes the first wait
        self.jobs = BenchJobs(engine, vm_id, settings.kvm_path)
        self.outage = False

    def run(self, stop: threading.Event) -> None:
        """Thread body until `stop`."""
        beat_at = 0.0
        while not stop.is_set():
            self.waker.wait(stop, at_most_s=HEARTBEAT_INTERVAL_S)  # a long poll still beats on time
            try:
                changes, version, queued = store.probe(self.engine, self.vm_id)
                newer = version != self.reconciler.workload_version
                if changes or newer:
                    self.reconciler.apply_changes(registrations=changes > 0, workload=newer)
                if queued is not None and not self.jobs.busy:
                    self.jobs.poll()
                now = time.monotonic()
                if now - beat_at >= HEARTBEAT_INTERVAL_S:
                    failed = self.machine.state == VmState.FAILED
                    store.heartbeat(
                        self.engine,
                        self.vm_id,
                        self.machine.state,
                        self.machine.error if failed else None,
                        self.health() if self.health else None,
                    )
                    beat_at = now
            except SQLAlchemyError as exc:
                if not self.outage:
                    log.error("control: database unavailable: %s", reason(exc))
                self.outage = True
                stop.wait(1.0)
                continue
            if self.outage:
                log.warning("control: database is back")
                self.outage = False
        self.waker.close()
