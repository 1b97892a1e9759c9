"""An idle VM for the observer's benchmark, held until stdin ends: `python -m benchmarks.idlevm`.

The doorbell guest is loaded but never run, as a VM whose guest sleeps: the observer must find
it every tick and pay nearly nothing for it. Benchmark only; the observer never opens /dev/kvm.
"""

from __future__ import annotations

import sys

from worker.guest.boot import GuestVm
from worker.kvm import Kvm


def main() -> int:
    """Build the VM, say ready, wait for end of input."""
    kvm = Kvm.open()
    vm = GuestVm(kvm)
    print("ready", flush=True)
    sys.stdin.read()
    vm.close()
    kvm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
