"""`iosignal bench`: the doorbell benchmark, userspace exits against ioeventfds, on a scratch VM.

Each one-way path rings one doorbell `writes` times in one guest pass, `repeat` times. The host
times the pass with the monotonic clock (and the vCPU thread's CPU time); the guest times it
with its TSC (converted with KVM_GET_TSC_KHZ). Every pass is checked: an ioeventfd path must
count exactly `writes` signals and no exits, a userspace path exactly `writes` exits. A
userspace path's passes alternate with the same pass through the bare KVM_RUN loop
(worker.bareloop), so its row carries that floor and the harness's own cost per exit, measured
in the same run. The round-trip paths (`writes` requests, each answered by an interrupt) run on
VMs of their own: worker/roundtripbench.py.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from contract.benchpaths import BENCH_PATHS
from contract.config import get_settings
from worker import hostinfo, roundtripbench
from worker.bareloop import bare_pass
from worker.exits import ExitCounter, GuestFault, PassRunner
from worker.guest.boot import GuestVm
from worker.guest.table import Ring, read_times, write_table
from worker.kvm import Datamatch, IoEventAddress, Kvm, KvmUnavailable, Mmio, NoDatamatch, Pio
from worker.roundtrip import RoundTripError
from worker.workload import PERIOD_S

BENCH_PORT = 0x0510
BENCH_GPA = 0xD000_0000  # outside guest RAM, below 4 GiB
VALUE = 0x1  # what a virtio-style notify writes: a queue index
WARMUP_WRITES = 1000  # first MMIO touch builds KVM's MMIO page entry; keep it out of timing


class BenchPath(NamedTuple):
    """One row of the table: the write the guest does and the ioeventfd (if any) catching it."""

    name: str
    space: str
    length: int  # width of the guest's write
    reg_len: int | None  # None: no ioeventfd, the write exits to userspace
    datamatch: Datamatch


# How each of contract.benchpaths' paths rings, in its order.
PATHS = {
    p.name: p
    for p in (
        BenchPath("userspace-pio", "pio", 4, None, NoDatamatch),
        BenchPath("userspace-mmio", "mmio", 4, None, NoDatamatch),
        BenchPath("ioeventfd-pio", "pio", 4, 4, NoDatamatch),
        BenchPath("ioeventfd-mmio", "mmio", 4, 4, NoDatamatch),
        BenchPath("ioeventfd-mmio-len0", "mmio", 4, 0, NoDatamatch),
        BenchPath("ioeventfd-datamatch", "pio", 4, 4, VALUE),
    )
}


class _Pass(NamedTuple):
    """One timed pass: host wall clock, the vCPU thread's CPU time, guest TSC ticks."""

    host_ns: int
    cpu_ns: int
    ticks: int


class BenchError(RuntimeError):
    """The benchmark could not run or a pass did not count what the guest wrote."""


def host_info() -> tuple[str, str]:
    """(host name, kernel) for the report."""
    uname = platform.uname()
    return socket.gethostname(), f"{uname.system} {uname.release} {uname.machine}"


def _address(path: BenchPath, offset: int = 0) -> tuple[int, IoEventAddress]:
    if path.space == "pio":
        return BENCH_PORT + offset, Pio(BENCH_PORT + offset)
    return BENCH_GPA + offset, Mmio(BENCH_GPA + offset)


def _one_pass(vm: GuestVm, runner: PassRunner, ring: Ring, efd: int | None) -> _Pass:
    """Run one pass; check the counts; return its host, vCPU-thread and guest times."""
    write_table(vm.mem, [ring])
    cpu, start = time.thread_time_ns(), time.perf_counter_ns()
    runner.run_pass()
    done = _Pass(time.perf_counter_ns() - start, time.thread_time_ns() - cpu, _guest_ticks(vm))
    exits = sum(runner.exits.swap().values())
    signals = 0
    if efd is not None:
        try:
            signals = os.eventfd_read(efd)
        except BlockingIOError:
            signals = 0
    want = (ring.writes, 0) if efd is not None else (0, ring.writes)
    if (signals, exits) != want:
        raise BenchError(
            f"{ring.writes} guest writes gave {signals} signals and {exits} exits, "
            f"expected {want[0]} and {want[1]}"
        )
    return done


PACED_WRITES = 200  # a doorbell at 20,000/s under the worker's pacer: 200 writes a pass
PACED_ROUNDS = 100  # at most: one second of paced passes a path


def _add_paced_cpu_ns(vm: GuestVm, runner: PassRunner, rows: list[dict], writes: int) -> None:
    """Give each one-way row `paced_cpu_ns`: the vCPU thread's CPU time per write as a doorbell
    ringing at a rate sees it, passes of PACED_WRITES every PERIOD_S with the thread asleep in
    between (as the worker's pacer and a real VMM's halting vCPU do). Measured here 1.35x the
    tight loop's cost difference between the userspace and ioeventfd paths: what registering
    saves a paced doorbell, which the diagnosis prices with.

    A userspace path and the ioeventfd paths compared with it take their passes in turn, pass
    for pass, each at an address of its own: what the host does meanwhile (other load, clock
    and cache state) moves them alike, so their difference holds still between runs where
    measuring one path's second after the other's moved it by +-15%."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["path"] in PATHS:
            groups.setdefault(BENCH_PATHS[row["path"]] or row["path"], []).append(row)
    for group in groups.values():
        rings: list[tuple[Ring, int | None, list[float]]] = []  # ring, eventfd, ns a write
        registered: list[tuple[int, IoEventAddress, BenchPath]] = []
        try:
            for k, row in enumerate(group):
                path = PATHS[row["path"]]
                addr, kvm_addr = _address(path, offset=8 * k)
                efd = None
                if path.reg_len is not None:
                    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                    vm.vm.register_ioevent(efd, kvm_addr, path.reg_len, path.datamatch)
                    registered.append((efd, kvm_addr, path))
                ring = Ring(path.space, addr, path.length, VALUE, min(PACED_WRITES, writes))
                _one_pass(vm, runner, ring._replace(writes=WARMUP_WRITES), efd)
                rings.append((ring, efd, []))
            for _ in range(max(1, min(PACED_ROUNDS, writes // PACED_WRITES))):
                for ring, efd, per_write in rings:
                    start = time.monotonic()
                    per_write.append(_one_pass(vm, runner, ring, efd).cpu_ns / ring.writes)
                    time.sleep(max(0.0, PERIOD_S - (time.monotonic() - start)))
        finally:
            for efd, kvm_addr, path in registered:
                vm.vm.unregister_ioevent(efd, kvm_addr, path.reg_len or 0, path.datamatch)
                os.close(efd)
        for row, (_, _, per_write) in zip(group, rings, strict=True):
            # median: a pass the host's other work did not stretch
            row["paced_cpu_ns"] = round(statistics.median(per_write), 1)


def _bare_pass(vm: GuestVm, ring: Ring) -> _Pass:
    """The same pass through the bare KVM_RUN loop (worker.bareloop): the floor."""
    assert vm.vcpu is not None
    write_table(vm.mem, [ring])
    cpu, start = time.thread_time_ns(), time.perf_counter_ns()
    bare_pass(vm.vcpu, ring.writes)
    return _Pass(time.perf_counter_ns() - start, time.thread_time_ns() - cpu, _guest_ticks(vm))


def _guest_ticks(vm: GuestVm) -> int:
    times = read_times(vm.mem)
    return times.tsc_end - times.tsc_start


def _run_path(
    vm: GuestVm, runner: PassRunner, path: BenchPath, writes: int, repeat: int, tick: Callable
) -> dict:
    addr, kvm_addr = _address(path)
    ring = Ring(path.space, addr, path.length, VALUE, writes)
    efd = None
    if path.reg_len is not None:
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        vm.vm.register_ioevent(efd, kvm_addr, path.reg_len, path.datamatch)
    bare = efd is None  # a userspace path: its bare loop runs interleaved, pass for pass
    try:
        _one_pass(vm, runner, ring._replace(writes=WARMUP_WRITES), efd)
        if bare:
            _bare_pass(vm, ring._replace(writes=WARMUP_WRITES))
        passes, bare_passes = [], []
        for _ in range(repeat):
            passes.append(_one_pass(vm, runner, ring, efd))
            if bare:
                bare_passes.append(_bare_pass(vm, ring))
            tick()
    finally:
        if efd is not None:
            vm.vm.unregister_ioevent(efd, kvm_addr, path.reg_len or 0, path.datamatch)
            os.close(efd)
    assert vm.vcpu is not None
    tsc_khz = vm.vcpu.get_tsc_khz()
    host_us = [p.host_ns / 1e3 / writes for p in passes]
    rtt = statistics.median(host_us)
    row = {
        "path": path.name,
        "writes": writes,
        "iops": round(1e6 / rtt, 1),
        "rtt_us": round(rtt, 4),
        "rtt_us_min": round(min(host_us), 4),
        "rtt_us_max": round(max(host_us), 4),
        "guest_rtt_us": round(
            statistics.median(p.ticks for p in passes) * 1e3 / tsc_khz / writes, 4
        ),
        # least pass: the one nothing else on the host disturbed
        "cpu_ns": round(min(p.cpu_ns for p in passes) / writes, 1),
    }
    return row | (_harness(passes, bare_passes, writes) if bare else {})


def _harness(passes: list[_Pass], bare: list[_Pass], writes: int) -> dict:
    """The bare loop's figures beside the harness's, and what the harness adds per exit.

    The overhead is read from the vCPU thread's CPU time, least of the passes: other load on
    the host stretches the wall clock by far more than the difference, but not the CPU time the
    thread spends, and the least pass is the one nothing else disturbed.
    """
    cpu_ns = min(p.cpu_ns for p in passes) / writes
    bare_cpu_ns = min(p.cpu_ns for p in bare) / writes
    return {
        "bare_rtt_us": round(statistics.median(p.host_ns for p in bare) / 1e3 / writes, 4),
        "bare_cpu_ns": round(bare_cpu_ns, 1),
        "harness_overhead_ns": round(cpu_ns - bare_cpu_ns, 1),
    }


def _run_paths(kvm: Kvm, names: list[str], writes: int, repeat: int, tick: Callable) -> list:
    """The rows in `names` order: one-way paths share one VM, each round trip has its own."""
    results: list[dict] = []
    scratch: tuple[GuestVm, PassRunner] | None = None  # the one-way paths' VM, made when needed
    try:
        for name in names:
            if name in roundtripbench.PATHS:
                doorbell = ("pio", BENCH_PORT, VALUE)
                path = roundtripbench.PATHS[name]
                results.append(roundtripbench.run_path(kvm, path, doorbell, writes, repeat, tick))
                continue
            if scratch is None:
                vm = GuestVm(kvm)
                assert vm.vcpu is not None
                scratch = vm, PassRunner(vm.vcpu, ExitCounter())
            results.append(_run_path(*scratch, PATHS[name], writes, repeat, tick))
        if scratch is not None:
            _add_paced_cpu_ns(*scratch, results, writes)
    finally:
        if scratch is not None:
            scratch[0].close()
    return results


def run_bench(
    writes: int = 200_000,
    repeat: int = 5,
    paths: list[str] | None = None,
    progress: Callable[[float], None] | None = None,
    kvm_path: str = "/dev/kvm",
) -> dict:
    """Run the benchmark on fresh scratch VMs; the dict `iosignal bench --json` prints."""
    names = list(paths) if paths else list(BENCH_PATHS)
    unknown = [n for n in names if n not in BENCH_PATHS]
    if unknown:
        raise ValueError(f"unknown path {unknown[0]!r}: paths are {', '.join(BENCH_PATHS)}")
    if writes < 1 or repeat < 1:
        raise ValueError("writes and repeat must be at least 1")
    done, total = 0, len(names) * repeat

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / total)

    kvm = Kvm.open(kvm_path)
    try:
        results = _run_paths(kvm, names, writes, repeat, tick)
    finally:
        kvm.close()
    host, kernel = host_info()
    return {"host": host, "kernel": kernel, **hostinfo.flavour(), "results": results}


def render_table(report: dict) -> Table:
    """The seed's table: one row per path, speedup over the userspace twin last.

    A round-trip row counts requests (one write and one interrupt each) and adds its p99. A
    userspace row adds the bare KVM_RUN loop's time per exit on the same guest and path, and
    what the harness adds to it per exit (vCPU thread CPU time).
    """
    title = f"doorbell writes and round trips on {report['host']} ({report['kernel']})"
    table = Table(title=title)
    headers = (
        *("path", "writes", "writes/s", r"rtt us median \[min-max]", "p99", "guest rtt us"),
        *("bare loop us", "harness ns"),
    )
    for header in headers:
        table.add_column(header, justify="left" if header == "path" else "right", no_wrap=True)
    table.add_column("vs userspace", justify="right", no_wrap=True)
    by_name = {r["path"]: r for r in report["results"]}
    for r in report["results"]:
        twin = by_name.get(BENCH_PATHS[r["path"]] or "")
        speedup = f"{twin['rtt_us'] / r['rtt_us']:.1f}x" if twin else ""
        table.add_row(
            r["path"],
            f"{r['writes']:,}",
            f"{r['iops']:,.0f}",
            f"{r['rtt_us']:.2f} [{r['rtt_us_min']:.2f}-{r['rtt_us_max']:.2f}]",
            f"{r['rtt_us_p99']:.2f}" if "rtt_us_p99" in r else "",
            f"{r['guest_rtt_us']:.2f}",
            f"{r['bare_rtt_us']:.2f}" if "bare_rtt_us" in r else "",
            f"{r['harness_overhead_ns']:+,.0f}" if "harness_overhead_ns" in r else "",
            speedup,
        )
    return table


def cli_bench(writes: int, repeat: int, paths: list[str] | None, json_out: bool) -> int:
    """`iosignal bench`: run with a progress bar, print the table (or JSON); the exit code."""
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(f"{writes:,} writes x {repeat}", total=1.0)
            report = run_bench(
                writes,
                repeat,
                paths,
                lambda f: bar.update(task, completed=f),
                kvm_path=get_settings().kvm_path,  # IOSIGNAL_KVM_PATH
            )
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        return 2
    except (KvmUnavailable, BenchError, RoundTripError, GuestFault, OSError) as e:
        err.print(f"[red]benchmark failed:[/red] {e}", soft_wrap=True)
        return 1
    if json_out:
        print(json.dumps(report))
    else:
        out = Console()
        out.width = max(out.width, 160)  # piped output defaults to 80 columns: too narrow
        out.print(render_table(report))
    return 0
