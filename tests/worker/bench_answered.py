"""Answered doorbells on a live machine: asked rate against kicks/s and interrupts/s (issue 13).

Run: .venv/bin/python tests/worker/bench_answered.py [RATE ...]   (default 1000 5000 10000)
     Each rate rings one answered PIO doorbell for 5 s on a fresh Machine (real KVM) and prints
     what the device saw and answered per second; asserts only that every kick was answered.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from worker.machine import Machine
from worker.workload import Doorbell

SECONDS = 5.0


def main(rates: list[float]) -> None:
    for rate in rates:
        machine = Machine("/dev/kvm")
        machine.start()
        try:
            machine.set_workload([Doorbell("pio", 0x6000, 2, 1, rate, answered=True)])
            time.sleep(1.0)  # the first passes, the consumer awake
            machine.collect()
            time.sleep(SECONDS)
            (a,) = machine.collect().answers
        finally:
            machine.close()
        assert abs(a.kicks - a.interrupts) <= 1, a  # one may be in flight at the tick
        print(
            f"asked {rate:8,.0f}/s  kicks {a.kicks / a.interval_s:8,.0f}/s  "
            f"interrupts {a.interrupts / a.interval_s:8,.0f}/s  ({a.interval_s:.2f} s)"
        )


if __name__ == "__main__":
    main([float(r) for r in sys.argv[1:]] or [1000.0, 5000.0, 10000.0])
