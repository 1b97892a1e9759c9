"""A tiny VMM for the observer's tests, run as its own process: `python tests/observer/vmm.py`.

Built on worker.kvm and the doorbell guest. Arguments name the ports that get an ioeventfd
(`--ioeventfd 0x510`, or `0x510:0x1` for one with datamatch 0x1). Then one command per stdin
line, one JSON answer per stdout line:
    ring SPACE ADDR LEN N [VALUE]   the guest writes VALUE (1) N times to ADDR  -> {"rang": N}
    counts                  eventfd signals per port, userspace exits per (space, addr, len)
    quit                    exit 0 (as does end of input)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from worker.exits import ExitCounter, PassRunner
from worker.guest.boot import GuestVm
from worker.guest.table import Ring, write_table
from worker.kvm import Kvm, NoDatamatch, Pio


def _port_and_match(text: str) -> tuple[int, int | None]:
    port, _, match = text.partition(":")
    return int(port, 0), int(match, 0) if match else None


def main() -> int:
    """Build the VM, say ready, serve commands until quit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ioeventfd", action="append", default=[], type=_port_and_match)
    args = parser.parse_args()
    kvm = Kvm.open()
    vm = GuestVm(kvm)
    exits = ExitCounter()
    runner = PassRunner(vm.vcpu, exits)
    efds = {}
    for port, match in args.ioeventfd:
        efds[port] = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        vm.vm.register_ioevent(efds[port], Pio(port), 4, NoDatamatch if match is None else match)
    signals = dict.fromkeys(efds, 0)
    exit_totals: dict[tuple, int] = {}
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        if cmd == "ring":
            space, addr, length, n = rest[0], int(rest[1], 0), int(rest[2]), int(rest[3])
            value = int(rest[4], 0) if len(rest) > 4 else 1
            write_table(vm.mem, [Ring(space, addr, length, value, n)])
            runner.run_pass()
            print(json.dumps({"rang": n}), flush=True)
        elif cmd == "counts":
            for port, efd in efds.items():
                with contextlib.suppress(BlockingIOError):
                    signals[port] += os.eventfd_read(efd)
            for key, n in exits.swap().items():
                exit_totals[key] = exit_totals.get(key, 0) + n
            answer = {
                "signals": {str(p): n for p, n in signals.items()},
                "exits": [[*k, n] for k, n in sorted(exit_totals.items())],
            }
            print(json.dumps(answer), flush=True)
    vm.close()
    kvm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
