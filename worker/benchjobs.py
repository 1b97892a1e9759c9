"""Queued benchmark runs (from the API) run by the worker on a scratch VM, one at a time."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from worker import store

log = logging.getLogger("iosignal.benchjobs")


class BenchJobs:
    """Claims queued `benchmark_runs` and runs each in a thread via `worker.bench.run_bench`."""

    def __init__(self, engine: Engine, vm_id: int, kvm_path: str = "/dev/kvm") -> None:
        self.engine, self.vm_id, self.kvm_path = engine, vm_id, kvm_path
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """A benchmark is running now."""
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> bool:
        """Start the oldest queued run unless one is running; True if one was started."""
        if self.busy:
            return False
        run = store.claim_benchmark(self.engine, self.vm_id)
        if run is None:
            return False
        self._thread = threading.Thread(
            target=self._run, args=(run,), name=f"bench-{run.id}", daemon=True
        )
        self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for a running benchmark (used on shutdown and in tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, run: Any) -> None:
        from worker.bench import run_bench

        last = {"at": 0.0, "value": 0.0}

        def progress(fraction: float) -> None:
            # At most a few writes a second: progress is for a person watching a bar.
            now = time.monotonic()
            if fraction < 1.0 and now - last["at"] < 0.25:
                return
            last.update(at=now, value=fraction)
            try:
                store.benchmark_progress(self.engine, run.id, fraction)
            except SQLAlchemyError as exc:
                log.warning("benchmark %d progress not stored: %s", run.id, exc)

        log.info("benchmark %d: %d writes x %d", run.id, run.writes, run.repeat)
        result, error = None, None
        try:
            result = run_bench(
                run.writes,
                run.repeat,
                list(run.paths or []) or None,
                progress=progress,
                kvm_path=self.kvm_path,
            )
        except Exception as exc:  # any failure belongs in the run's row, not in a dead thread
            error = f"{type(exc).__name__}: {exc}"
            log.error("benchmark %d failed: %s", run.id, error)
        try:
            store.finish_benchmark(self.engine, run.id, result, error)
        except SQLAlchemyError as exc:
            log.error("benchmark %d result not stored: %s", run.id, exc)
