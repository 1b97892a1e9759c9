"""How fast a worker applies a new registration: commit -> `active`, on SQLite or PostgreSQL.

    python -m worker.applybench [DATABASE_URL] [N]

Starts `iosignal worker` on the database (a temporary SQLite file by default), commits N
registrations one at a time (with `notify_desired`, as the API does) and prints the median and
max time until the row reads `active`. A measurement, not a test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Ioeventfd, RegState, Vm, VmState
from contract.notify import notify_desired

NAME = "applybench"


def _wait_running(db: Session, pid: int) -> Vm:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        vm = db.scalars(select(Vm).where(Vm.name == NAME)).first()
        if vm is not None and vm.pid == pid and vm.state == VmState.RUNNING:
            return vm
        db.expire_all()
        time.sleep(0.05)
    raise RuntimeError("the worker did not start within 30 s")


def apply_latency(url: str, n: int = 30) -> list[float]:
    """Milliseconds from each registration's commit until the test reads it `active`."""
    upgrade(url)
    engine = make_engine(url)
    env = os.environ | {
        "IOSIGNAL_DATABASE_URL": url,
        "IOSIGNAL_VM_NAME": NAME,
        "IOSIGNAL_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env)
    lags = []
    try:
        with Session(engine) as db:
            vm = _wait_running(db, proc.pid)
            for i in range(n):
                row = Ioeventfd(vm_id=vm.id, space="pio", addr=0x2000 + i, len=1, label=NAME)
                db.add(row)
                db.commit()
                t0 = time.perf_counter()
                notify_desired(db, vm.id)
                state = select(Ioeventfd.state).where(Ioeventfd.id == row.id)
                while db.scalar(state) == RegState.PENDING:
                    time.sleep(0.001)
                lags.append(1000 * (time.perf_counter() - t0))
                time.sleep(0.137)  # land at different phases of the SQLite poll
    finally:
        proc.terminate()
        proc.wait(30)
        with Session(engine) as db:  # leave the database as we found it
            db.execute(delete(Vm).where(Vm.name == NAME))
            db.commit()
        engine.dispose()
    return lags


def main() -> None:
    """Command line: print the figures."""
    with tempfile.TemporaryDirectory(prefix="iosignal-applybench-") as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 'a.db'}"
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
        lags = apply_latency(url, n)
    print(
        f"{make_url(url).get_backend_name()}: commit -> active over {n} registrations: "
        f"median {statistics.median(lags):.1f} ms, max {max(lags):.1f} ms, "
        f"min {min(lags):.1f} ms"
    )


if __name__ == "__main__":
    main()
