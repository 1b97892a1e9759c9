"""When the control thread looks for new desired state: woken by the app, or at the next poll.

PostgreSQL: LISTEN/NOTIFY. SQLite: a FIFO beside the database file (`contract.notify.wake_path`)
that the app pokes after its commit. Both fall back to polling, so a lost wake-up costs one
poll interval, never a registration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import stat
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from contract.notify import CHANNEL, wake_path

log = logging.getLogger("iosignal.worker")
STOP_CHECK_S = 0.5  # a long poll interval still notices `stop` this soon


class FifoWake:
    """The reading end of a SQLite wake-up FIFO: made if missing, held open until `close`.

    Opened read-write, so it never reads end-of-file when the pokers close their ends, and the
    app's non-blocking open finds a reader as long as this worker lives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileExistsError):  # left by a worker killed with -9: reused
            os.mkfifo(path, 0o666)  # the umask decides who may poke
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} exists and is not a FIFO")
        self.fd = fd
        self._poll = select.poll()  # not select(): a worker with many eventfds has fds > 1024
        self._poll.register(fd, select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        """True as soon as a poke arrives (all pending pokes are consumed), False at timeout."""
        if not self._poll.poll(max(0, int(timeout_s * 1000))):
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass
        return True

    def close(self) -> None:
        """Close and remove the FIFO: pokes then find no file and cost nothing."""
        os.close(self.fd)
        with contextlib.suppress(OSError):
            self.path.unlink()


class Waker:
    """Waits until desired state may have changed: a wake-up from the app, or the poll.

    On PostgreSQL it LISTENs and still wakes every `fallback_s`, so a notification lost while the
    listening connection was down is caught up by polling. On SQLite it waits on the FIFO of
    `vm_id` for at most `poll_s`. With `wakeup=False` (or no `vm_id` on SQLite) it only polls.
    """

    def __init__(
        self,
        url: str,
        poll_s: float,
        fallback_s: float = 0.5,
        vm_id: int | None = None,
        wakeup: bool = True,
    ) -> None:
        parsed = make_url(url)
        self.poll_s, self.fallback_s = poll_s, fallback_s
        self.listen = wakeup and parsed.get_backend_name() == "postgresql"
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        self.vm_id = vm_id
        self.fifo_path = wake_path(parsed, vm_id) if wakeup and vm_id is not None else None
        self._fifo: FifoWake | None = None
        self.notified = 0  # wake-ups received (NOTIFYs or pokes), for tests and logs

    def _connect(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def open_fifo(self) -> None:
        """Start listening on the SQLite FIFO (done by the first `wait`); on failure, poll only."""
        if self.fifo_path is None or self._fifo is not None:
            return
        try:
            self._fifo = FifoWake(self.fifo_path)
        except OSError as exc:
            log.warning("no wake-up FIFO (%s): polling every %g s", exc, self.poll_s)
            self.fifo_path = None

    def wait(self, stop: threading.Event, at_most_s: float | None = None) -> None:
        """Return after a wake-up, the poll interval (or `at_most_s` if shorter), or `stop`."""
        if self.listen:
            self._wait_notify(stop)
            return
        self.open_fifo()
        deadline = time.monotonic() + min(self.poll_s, at_most_s or self.poll_s)
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._fifo is None:
                stop.wait(min(left, STOP_CHECK_S))
            elif self._fifo.wait(min(left, STOP_CHECK_S)):
                self.notified += 1
                return

    def _wait_notify(self, stop: threading.Event) -> None:
        import psycopg

        try:
            if self._conn is None:
                self._connect()
            for notify in self._conn.notifies(timeout=self.fallback_s):
                # Every worker LISTENs on one channel: another VM's change is not ours to probe.
                if self.vm_id is None or notify.payload == str(self.vm_id):
                    self.notified += 1
                    break
        except psycopg.Error:
            self._close_conn()
            stop.wait(self.fallback_s)  # database away: the caller's poll reports it

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Drop the listening connection and the FIFO."""
        self._close_conn()
        if self._fifo is not None:
            self._fifo.close()
            self._fifo = None
