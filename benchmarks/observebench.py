"""`iosignal observe --bench`: what watching costs the guests and the host, measured in one run.

1. Guest write rate with the observer's programs attached / without, on one VM, in phases that
   alternate (without, floor, with, with, floor, without, ...) so drift cancels: the ioeventfd
   path and the userspace path, as ns per write at the 10th, 25th and 50th percentile of the
   passes. By the vCPU thread's CPU time and by the wall clock: on a shared host the wall clock
   also counts waiting for a CPU; the low percentiles of CPU time are the cost itself. The
   floor: programs that return at once on the same tracepoints, what the kernel's hooks alone
   cost; and whether the kernel offers cheaper hooks (fexit, kprobes) at all.
2. The observer's CPU (the real `iosignal observe` process on a temporary SQLite database, 1 s
   tick: discovery, reads, writes) while a guest writes as fast as it can, and with N idle VMs.
   The programs themselves run on the guests' vCPU threads: their cost is inside the rates of 1,
   and the kernel's run-time statistics give it per event.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, select

from benchmarks import latencybench
from contract.db import make_engine
from contract.models import Observer
from observer.bpf.tracefs import TRACEFS

IOEVENTFD_PORT, USER_PORT = 0x510, 0x520
Progress = Callable[[float], None] | None  # told the fraction done, for a bar


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _observer_row(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(Observer.id).where(Observer.pid == pid)).first() is not None


class ObserverProcess:
    """`iosignal observe` on a temporary SQLite database, started and stopped on demand."""

    def __init__(self, url: str) -> None:
        env = {**os.environ, "IOSIGNAL_DATABASE_URL": url, "IOSIGNAL_SAMPLE_INTERVAL_S": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "observe"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # started once its first tick is written (its row in `observers`): other processes'
        # programs on the host say nothing of this one
        engine = make_engine(url)
        try:
            deadline = time.monotonic() + 60
            while not _observer_row(engine, self.proc.pid):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("iosignal observe did not start: run it alone to see why")
                time.sleep(0.1)
        finally:
            engine.dispose()
        time.sleep(1.5)  # past the start-up's tail

    def cpu_share(self, seconds: float, progress: Progress = None) -> float:
        """Share of one core it uses over the next `seconds` (`progress` told each second)."""
        cpu0, t0 = _cpu_s(self.proc.pid), time.monotonic()
        while (waited := time.monotonic() - t0) < seconds:
            if progress is not None:
                progress(waited / seconds)
            time.sleep(min(1.0, seconds - waited))
        return (_cpu_s(self.proc.pid) - cpu0) / (time.monotonic() - t0)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(30)


class BenchVm:
    """One VM in this process: an ioeventfd on one port, none on the other."""

    def __init__(self) -> None:
        from worker.exits import ExitCounter, PassRunner
        from worker.guest.boot import GuestVm
        from worker.kvm import Kvm, Pio

        self.kvm = Kvm.open()
        self.vm = GuestVm(self.kvm)
        assert self.vm.vcpu is not None  # GuestVm builds its vCPU or raises
        self.runner = PassRunner(self.vm.vcpu, ExitCounter())
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.vm.vm.register_ioevent(self.efd, Pio(IOEVENTFD_PORT), 4)

    def rate(self, port: int, writes: int) -> tuple[float, float]:
        """One pass of `writes` writes to `port`: guest writes per second of wall-clock time
        and per second of the vCPU thread's CPU time (guest and host work of the writes)."""
        from worker.guest.table import Ring, write_table

        write_table(self.vm.mem, [Ring("pio", port, 4, 1, writes)])
        wall, cpu = time.perf_counter(), time.thread_time()
        self.runner.run_pass()
        return writes / (time.perf_counter() - wall), writes / (time.thread_time() - cpu)

    def close(self) -> None:
        """Close VM, KVM and the eventfd."""
        self.vm.close()
        self.kvm.close()
        os.close(self.efd)


OFF, HOOKS, COUNTING = "off", "hooks", "counting"  # the phases of `overhead`


def overhead(
    vm: BenchVm,
    rounds: int,
    writes: int,
    cost: dict[str, list[int]],
    progress: Progress = None,
    phases: tuple[str, ...] = (OFF, HOOKS, COUNTING),
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per path and phase: guest ns per write (wall clock, vCPU CPU time) in three phases:
    OFF (nothing attached), HOOKS (programs that return at once, on the same tracepoints: what
    the kernel's hooks alone cost, a floor no program there can go under) and COUNTING (the
    observer's programs); `phases` picks some.

    The programs (the same KvmProbe) are attached and detached in-process, a few ms each, so
    phases alternate many times and drift cancels; three passes per phase. `cost` gets each
    counting program's [run time ns, runs] from the kernel's run-time statistics.
    """
    from observer.bpf import RunStats
    from observer.bpf.program import prog_info
    from observer.probe import KvmProbe

    paths = {"ioeventfd": (IOEVENTFD_PORT, writes), "userspace": (USER_PORT, writes // 5)}
    for port, n in paths.values():
        vm.rate(port, n // 10)  # warm up
    ns: dict[str, dict[str, list[tuple[float, float]]]] = {
        p: {phase: [] for phase in phases} for p in paths
    }
    for r in range(rounds):
        for phase in phases if r % 2 == 0 else reversed(phases):
            probe = None if phase == OFF else KvmProbe(empty=phase == HOOKS)
            for _ in range(3):
                for p, args in paths.items():
                    wall, cpu = vm.rate(*args)
                    ns[p][phase].append((1e9 / wall, 1e9 / cpu))
            if probe is not None:
                probe.close()
        if progress is not None:
            progress((r + 1) / rounds)
    # One more counting phase with the statistics on (they add two clock reads to every run,
    # so they stay out of the figures above).
    with RunStats(), KvmProbe() as probe:
        for args in paths.values():
            vm.rate(*args)
        for event, fd in probe.program_fds().items():
            info = prog_info(fd)
            cost[event] = [info.run_time_ns, info.run_cnt]
    return ns


def cheaper_hooks(tracefs: str = TRACEFS) -> list[str]:
    """Whether this kernel offers hooks that could count a userspace exit with one program
    instead of two tracepoint programs: an fexit program on kvm_io_bus_write (its return
    value tells in-kernel from userspace), a kprobe. One line each: offered, or why not."""
    from observer.bpf.libbpf import BpfObject
    from observer.probe import PROGS

    try:
        BpfObject(str(PROGS / "kvm_counts.bpf.o"), ["iosig_fexit"]).close()
        fexit = "loads"
    except OSError as exc:
        fexit = f"refused at BPF_PROG_LOAD: {errno.errorcode.get(exc.errno or 0, exc.errno)}"
    kprobes = os.path.exists(os.path.join(tracefs, "kprobe_events"))
    return [
        f"fexit on kvm_io_bus_write: {fexit}",
        "kprobes: " + ("offered" if kprobes else "not in this kernel (no kprobe_events)"),
    ]


def syscall_cost(rounds: int = 5, calls: int = 200_000) -> dict[str, float]:
    """What every other process pays: a getppid(2) call's CPU time (ns, least of `rounds`
    alternations) with nothing attached, with the observer's programs, and with them but
    without the registration programs (the raw syscall tracepoints, `--no-registrations`)."""
    from observer.probe import KvmProbe

    def per_call() -> float:
        start = time.thread_time_ns()
        for _ in range(calls):
            os.getppid()
        return (time.thread_time_ns() - start) / calls

    phases: dict[str, Callable[[], KvmProbe | None]] = {
        OFF: lambda: None,
        COUNTING: KvmProbe,
        "no registrations": lambda: KvmProbe(registrations=False),
    }
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, make in phases.items():
            probe = make()
            ns = per_call()
            if probe is not None:
                probe.close()
            best[name] = min(best.get(name, ns), ns)
    return best


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[int(len(values) * q)]


def busy_cpu(
    vm: BenchVm, url: str, seconds: float, progress: Progress = None
) -> tuple[float, float]:
    """(observer CPU share, guest writes/s) while the guest writes flat out."""
    stop, done = threading.Event(), []

    def ring() -> None:
        while not stop.is_set():
            done.append(200_000 / vm.rate(IOEVENTFD_PORT, 200_000)[0])

    obs = ObserverProcess(url)
    t = threading.Thread(target=ring)
    t.start()
    share = obs.cpu_share(seconds, progress)
    stop.set()
    t.join()
    obs.stop()
    return share, 200_000 * len(done) / sum(done)


def idle_cpu(url: str, n_vms: int, seconds: float, progress: Progress = None) -> float:
    """Observer CPU share with `n_vms` idle VM processes on the host."""
    vms = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.idlevm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n_vms)
    ]
    try:
        for v in vms:
            assert v.stdout is not None  # stdout=PIPE
            if v.stdout.readline() != "ready\n":  # else the observer would watch fewer VMs
                raise RuntimeError("an idle VM did not start: run python -m benchmarks.idlevm")
        obs = ObserverProcess(url)
        share = obs.cpu_share(seconds, progress)
        obs.stop()
        return share
    finally:
        for v in vms:
            assert v.stdin is not None  # stdin=PIPE
            v.stdin.close()
            v.wait(30)


def cli_bench(
    rounds: int = 30, writes: int = 200_000, idle_vms: int = 50, seconds: float = 20.0
) -> int:
    """Check what the observer needs, run the three measurements with a progress bar and print
    them with their targets; the exit code (1, with one sentence, when something is missing)."""
    from rich.console import Console
    from rich.progress import Progress as Bar

    from contract.migrate import upgrade
    from observer.preflight import ObserverUnavailable, open_probe
    from worker.kvm import KvmUnavailable

    err = Console(stderr=True)
    try:
        open_probe().close()
        vm = BenchVm()
    except (ObserverUnavailable, KvmUnavailable) as exc:
        err.print(f"[red]cannot measure:[/red] {exc}", soft_wrap=True)
        return 1
    with tempfile.TemporaryDirectory() as tmp, Bar(console=err, transient=True) as bar:

        def stage(name: str) -> Callable[[float], None]:
            task = bar.add_task(name, total=1.0)
            return lambda done: bar.update(task, completed=done)

        url = f"sqlite:///{tmp}/observe-bench.db"
        try:
            upgrade(url)
            cost: dict[str, list[int]] = {}
            ratios = overhead(vm, rounds, writes, cost, stage(f"guest writes, {rounds} rounds"))
            share_busy, rate = busy_cpu(vm, url, seconds, stage("observer CPU, guest writing"))
            latency = latencybench.report(
                max(3, rounds // 5), lambda: vm.rate(IOEVENTFD_PORT, writes // 4)[1], stage
            )
        finally:
            vm.close()
        share_idle = idle_cpu(url, idle_vms, seconds, stage(f"observer CPU, {idle_vms} idle VMs"))
    print(f"guest write rate with the observer's programs / without ({rounds} rounds x 3):")
    for path, target in (("ioeventfd", 0.95), ("userspace", 0.98)):
        by = ratios[path]
        for i, clock in ((1, "vCPU CPU time"), (0, "wall clock")):
            cells = []
            for q in (0.1, 0.25, 0.5):
                off = _pct([x[i] for x in by[OFF]], q)
                on = _pct([x[i] for x in by[COUNTING]], q)
                cells.append(f"p{int(q * 100)} {off:,.0f} -> {on:,.0f} ns ({off / on:.3f})")
            print(f"  {path:9s} {clock:13s} " + "  ".join(cells) + f"   target >= {target}")
    print("the floor: programs that return at once, on the same tracepoints (vCPU CPU time):")
    for path, by in ratios.items():
        cells = []
        for q in (0.1, 0.25):
            off, hooks, on = (_pct([x[1] for x in by[ph]], q) for ph in (OFF, HOOKS, COUNTING))
            cells.append(
                f"p{int(q * 100)} {hooks - off:+.0f} ns ({off / hooks:.3f}), "
                f"counting {on - hooks:+.0f} over it"
            )
        print(f"  {path:9s} " + "   ".join(cells))
    print("hooks cheaper than two tracepoints for a userspace exit, offered here?")
    for line in cheaper_hooks():
        print(f"  {line}")
    print("the programs' own time per event (kernel run-time statistics, every VM on the host):")
    for event, (ns, runs) in cost.items():
        print(f"  {event:20s} {ns / runs if runs else 0:6.0f} ns x {runs:,} runs")
    sys_ns = syscall_cost()
    off = sys_ns[OFF]
    print(
        f"any other process's syscall (getppid, CPU time): {off:,.0f} ns, with the programs "
        f"{sys_ns[COUNTING]:,.0f} ns ({off / sys_ns[COUNTING]:.3f}), --no-registrations "
        f"{sys_ns['no registrations']:,.0f} ns ({off / sys_ns['no registrations']:.3f})"
    )
    for line in latency:
        print(line)
    print(f"observer CPU, guest writing {rate:,.0f}/s: {share_busy:.2%} of a core   target <= 5%")
    print(f"observer CPU, {idle_vms} idle VMs: {share_idle:.2%} of a core   target <= 1%")
    return 0


if __name__ == "__main__":
    sys.exit(cli_bench())
