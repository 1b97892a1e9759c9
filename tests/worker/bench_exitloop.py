"""The userspace exit loop before and after a change, in one interleaved run (issue 13, item 5).

Run: .venv/bin/python tests/worker/bench_exitloop.py [REV] [--writes N] [--repeat R] [--space S]
     REV (default HEAD~1... any git revision) gives the "before" worker/exits.py, loaded from git
     beside the working tree's; both run the same guest and path as `iosignal bench`'s userspace
     rows, pass after pass with the bare KVM_RUN loop (worker.bareloop), so all three see the same
     load. Prints per exit the vCPU thread's CPU time (least pass: the figure to compare) and the
     wall clock (median pass); asserts only that every pass counted every exit.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker import exits  # noqa: E402
from worker.bareloop import bare_pass  # noqa: E402
from worker.bench import BENCH_GPA, BENCH_PORT, VALUE  # noqa: E402
from worker.guest.boot import GuestVm  # noqa: E402
from worker.guest.table import Ring, write_table  # noqa: E402
from worker.kvm import Kvm  # noqa: E402


def load_before(rev: str):
    """worker/exits.py as it was at `rev`, as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:worker/exits.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("exits_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{rev}:worker/exits.py", "exec"), module.__dict__)
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", nargs="?", default="HEAD~1")
    ap.add_argument("--writes", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--space", choices=("pio", "mmio"), default="pio")
    args = ap.parse_args()
    before = load_before(args.rev)
    kvm = Kvm.open("/dev/kvm")
    vm = GuestVm(kvm)
    assert vm.vcpu is not None
    addr = BENCH_PORT if args.space == "pio" else BENCH_GPA
    ring = Ring(args.space, addr, 4, VALUE, args.writes)
    loops = {
        f"before ({args.rev})": before.PassRunner(vm.vcpu, before.ExitCounter()),
        "after (working tree)": exits.PassRunner(vm.vcpu, exits.ExitCounter()),
        "bare KVM_RUN loop": None,
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    for round_ in range(args.repeat + 1):  # round 0 warms up
        for name, runner in loops.items():
            write_table(vm.mem, [ring])
            cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
            if runner is None:
                bare_pass(vm.vcpu, args.writes)
            else:
                runner.run_pass()
            wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
            if runner is not None:
                counted = sum(runner.exits.swap().values())
                assert counted == args.writes, f"{name} counted {counted} of {args.writes}"
            if round_:
                times[name].append((cpu / args.writes, wall / args.writes))
    vm.close()
    kvm.close()
    bare_cpu = min(c for c, _ in times["bare KVM_RUN loop"])
    print(f"{args.space}, {args.writes:,} writes x {args.repeat}, interleaved; ns per exit")
    print(f"{'loop':24s} {'cpu (least)':>12s} {'over bare':>10s} {'wall (median)':>14s}")
    for name, runs in times.items():
        cpu = min(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"{name:24s} {cpu:12,.0f} {cpu - bare_cpu:+10,.0f} {wall:14,.0f}")


if __name__ == "__main__":
    main()
