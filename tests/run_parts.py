"""Run the test suite in its two parts, then print its ten slowest tests (`make test` runs this).

First every test not marked `serial`, spread over PYTEST_JOBS processes by pytest-xdist (default
4 on any machine: most tests wait on subprocesses, VMs, sockets and sleeps, so more processes than
cores pays); a module's tests stay in one process, so its module-scoped fixtures (an e2e stack, a
VM) are built once. Then the `serial` tests, alone: host-wide BPF counting and timing-sensitive
figures must see no other test. Arguments go to both parts. The exit code is pytest's for the
whole run: 5 only when neither part ran a test, else the first failing part's, else 0.
Each part's JUnit XML report stays in .pytest_cache/parts/.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from subprocess import call

PYTEST = str(Path(sys.executable).with_name("pytest"))
REPORTS = Path(".pytest_cache") / "parts"  # each part's JUnit XML, kept for a look afterwards
NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


def slowest(reports: list[Path], n: int = 10) -> list[tuple[float, str]]:
    """The `n` longest tests (setup + call + teardown) in these JUnit XML reports."""
    times = []
    for report in reports:
        if not report.exists():  # a part that stopped before writing it (a usage error)
            continue
        for case in ET.parse(report).getroot().iter("testcase"):
            node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            times.append((float(case.get("time") or 0), node))
    return sorted(times, reverse=True)[:n]


def overall(codes: list[int]) -> int:
    """One exit code for the parts, as a single pytest run would give."""
    failed = [c for c in codes if c not in (0, NO_TESTS)]
    if failed:
        return failed[0]
    return NO_TESTS if all(c == NO_TESTS for c in codes) else 0


def main(args: list[str]) -> int:
    jobs = os.environ.get("PYTEST_JOBS", "4")
    parts = {
        "parallel": ["-n", jobs, "--dist", "loadscope", *args, "--part", "parallel"],
        "serial": [*args, "-n", "0", "--part", "serial"],
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    codes, reports = [], []
    for name, part_args in parts.items():
        reports.append(REPORTS / f"{name}.xml")
        reports[-1].unlink(missing_ok=True)
        print(f"\n=== {name} part: pytest {' '.join(part_args)}", flush=True)
        codes.append(call([PYTEST, *part_args, f"--junitxml={reports[-1]}"]))
    top = slowest(reports)
    print("\n=== ten slowest tests (setup + call + teardown, seconds)")
    for seconds, node in top:
        print(f"{seconds:8.2f}  {node}")
    print(f"=== parts: {', '.join(f'{n} exit {c}' for n, c in zip(parts, codes, strict=True))}")
    return overall(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
