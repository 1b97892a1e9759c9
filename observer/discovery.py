"""Discovery: every process holding a KVM VM fd is a VM, whatever program it runs.

A VM is keyed by (pid, process start time): a reused pid is a new VM. Read from /proc only, so it
sees QEMU, Firecracker, crosvm or iosignal's own worker alike, and changes nothing in them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

VM_FD = "anon_inode:kvm-vm"
VCPU_FD = "anon_inode:kvm-vcpu:"
CMDLINE_HEAD = 512  # characters of the command line kept


class VmKey(NamedTuple):
    """A VM's identity on its host: the VMM's pid and its process start (clock ticks)."""

    pid: int
    start_ticks: int


class VmProcess(NamedTuple):
    """One VMM process as /proc shows it."""

    key: VmKey
    started_at: datetime  # process start, UTC (10 ms resolution)
    comm: str
    cmdline: str  # head of the command line, arguments joined by spaces
    vcpus: int  # distinct vCPUs it holds fds of (anon_inode:kvm-vcpu:N)
    vm_fds: tuple[int, ...]  # its kvm-vm fd numbers (debugfs names a VM PID-FD)

    @property
    def pid(self) -> int:
        """The VMM's process id (the tgid the BPF counts are keyed by)."""
        return self.key.pid


def _boot_time(proc: str) -> datetime:
    with open(f"{proc}/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return datetime.fromtimestamp(int(line.split()[1]), UTC)
    raise RuntimeError(f"{proc}/stat has no btime line")


class Discovery:
    """Finds VMs; `scan()` is one tick's look at /proc.

    A full pass reads every process's fds (a few ms for a few hundred processes). Between full
    passes (every `full_every` ticks) a tick reads the fds of new processes only: a VM already
    known is checked alive by its start time (one small read), a process known to hold no VM is
    skipped once it is `young_ticks` ticks old (a VMM creates its VM soon after it starts; one
    that creates it later is found by the next full pass, or as soon as its guest does I/O,
    through `describe`). With KVM's debugfs folder (`kvm_dir`: one PID-FD entry per live VM),
    a tick whose entries did not change reuses the previous tick's VMs outright.
    """

    def __init__(
        self,
        proc: str = "/proc",
        kvm_dir: str | None = None,
        full_every: int = 30,
        young_ticks: int = 10,
    ) -> None:
        self.proc, self.kvm_dir, self.full_every = proc, kvm_dir, full_every
        self.young_ticks = young_ticks
        self.boot = _boot_time(proc)
        self.hz = os.sysconf("SC_CLK_TCK")
        self.full_scans = self.fd_scans = 0
        self._last: dict[VmKey, VmProcess] | None = None
        self._last_entries: frozenset[str] | None = None
        self._reused = 0
        self._ticks = 0
        self._vms: dict[int, VmProcess] = {}  # pid -> its VM, as last seen
        self._others: dict[int, int] = {}  # pid holding no VM -> the tick it was first seen

    def _kvm_fds(self, pid: str) -> tuple[list[int], int]:
        self.fd_scans += 1
        vm_fds, vcpus = [], set()  # a vCPU may be held by several fds (Python's mmap dups it)
        try:
            with os.scandir(f"{self.proc}/{pid}/fd") as fds:
                for fd in fds:
                    try:
                        target = os.readlink(fd.path)
                    except OSError:  # closed meanwhile
                        continue
                    if target == VM_FD:
                        vm_fds.append(int(fd.name))
                    elif target.startswith(VCPU_FD):
                        vcpus.add(target[len(VCPU_FD) :])
        except OSError:  # gone, or not ours to read
            return [], 0
        return vm_fds, len(vcpus)

    def describe(
        self, pid: int, vm_fds: list[int] | None = None, vcpus: int = 0
    ) -> VmProcess | None:
        """The VmProcess for `pid`, or None if it is gone (or holds no VM fd when unasked).
        A VM found is known to later scans."""
        if vm_fds is None:
            vm_fds, vcpus = self._kvm_fds(str(pid))
            if not vm_fds:
                return None
        try:
            with open(f"{self.proc}/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"{self.proc}/{pid}/cmdline", "rb") as f:
                cmdline = f.read(CMDLINE_HEAD * 4)
        except OSError:
            return None
        # comm may hold spaces and parentheses: it ends at the last ')'
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, starttime
        text = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        vm = VmProcess(
            VmKey(pid, start_ticks),
            self.boot + timedelta(seconds=start_ticks / self.hz),
            comm,
            text[:CMDLINE_HEAD],
            vcpus,
            tuple(sorted(vm_fds)),
        )
        self._vms[pid] = vm
        self._others.pop(pid, None)
        return vm

    def _start_ticks(self, pid: int) -> int | None:
        try:
            with open(f"{self.proc}/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return None
        return int(stat[stat.rindex(b")") + 2 :].split()[19])

    def _entries(self) -> frozenset[str] | None:
        if self.kvm_dir is None:
            return None
        try:
            return frozenset(n for n in os.listdir(self.kvm_dir) if "-" in n)
        except OSError:
            return None

    def scan(self) -> dict[VmKey, VmProcess]:
        """Every process on the host that holds a KVM VM fd now."""
        self._ticks += 1
        entries = self._entries()
        due = self._last is None or self._reused >= self.full_every
        if not due and entries is not None and entries == self._last_entries:
            self._reused += 1
            return dict(self._last or {})
        if due:
            self._last, self._reused = self.scan_proc(), 0
        else:
            self._last, self._reused = self.scan_new(), self._reused + 1
        self._last_entries = entries
        return dict(self._last)

    def scan_proc(self) -> dict[VmKey, VmProcess]:
        """A full pass over /proc."""
        self.full_scans += 1
        self._vms.clear()
        others = {}
        for name in os.listdir(self.proc):
            if not name.isdigit():
                continue
            vm_fds, vcpus = self._kvm_fds(name)
            if not vm_fds or self.describe(int(name), vm_fds, vcpus) is None:
                # the processes of the first pass predate the observer: none of them is young
                first = self._ticks if self.full_scans > 1 else -self.young_ticks - 1
                others[int(name)] = self._others.get(int(name), first)
        self._others = others
        return {vm.key: vm for vm in self._vms.values()}

    def scan_new(self) -> dict[VmKey, VmProcess]:
        """Known VMs still alive (same start time), plus whatever new processes hold a VM."""
        pids = {int(n) for n in os.listdir(self.proc) if n.isdigit()}
        for pid, vm in list(self._vms.items()):
            if pid not in pids or self._start_ticks(pid) != vm.key.start_ticks:
                del self._vms[pid]  # exited (or its pid is another process's now)
        self._others = {pid: t for pid, t in self._others.items() if pid in pids}
        for pid in pids:
            if pid in self._vms:
                continue
            first = self._others.setdefault(pid, self._ticks)
            if self._ticks - first > self.young_ticks:
                continue
            vm_fds, vcpus = self._kvm_fds(str(pid))
            if vm_fds:
                self.describe(pid, vm_fds, vcpus)
        return {vm.key: vm for vm in self._vms.values()}
