"""What each part of the write-path program costs: `python -m observer.benchparts [rounds]`.

Builds the counting programs whole, without arming the thread's pending write, without counting,
and without both, and prints for each the ioeventfd write's cost with them attached / without
(observer.bench.overhead: the vCPU thread's CPU time, p10 and p25). The parts are left out by
swapping the builder's functions in this process only; the figures are for reading, not counting.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from observer import programs
from observer.bench import COUNTING, OFF, BenchVm, _pct, overhead


@contextmanager
def _without(*parts: str) -> Iterator[None]:
    """The program builder with `parts` (its functions' names) building nothing, meanwhile."""
    saved = {name: getattr(programs, name) for name in parts}

    def nothing(*_args: Any) -> None:
        return None

    try:
        for name in parts:
            setattr(programs, name, nothing)
        yield
    finally:
        for name, function in saved.items():
            setattr(programs, name, function)


def main(rounds: int = 6) -> int:
    """Print the ioeventfd write's cost per variant of the programs."""
    variants = {
        "whole": (),
        "without arming": ("_arm",),
        "without counting": ("_count_write",),
        "without both": ("_arm", "_count_write"),
    }
    vm = BenchVm()
    try:
        print(f"ioeventfd write, vCPU CPU time, programs attached / not ({rounds} rounds x 3):")
        for name, parts in variants.items():
            with _without(*parts):
                ns = overhead(vm, rounds, 200_000, {}, phases=(OFF, COUNTING))["ioeventfd"]
            cells = []
            for q in (0.1, 0.25):
                off, on = (_pct([x[1] for x in ns[w]], q) for w in (OFF, COUNTING))
                cells.append(
                    f"p{int(q * 100)} {off:,.0f} -> {on:,.0f} ns (+{on - off:.0f}, {off / on:.3f})"
                )
            print(f"  {name:17s} " + "  ".join(cells))
    finally:
        vm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
