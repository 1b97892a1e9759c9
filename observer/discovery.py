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
    """Finds VMs; `scan()` is one pass over /proc (a few ms for a few hundred processes).

    With KVM's debugfs folder (`kvm_dir`: one PID-FD entry per live VM, made when a VM is
    created and removed when it is destroyed), a tick whose entries did not change reuses the
    previous pass, so idle VMs cost one directory listing; a full pass still runs every
    `full_every` ticks (a VM that gained vCPUs shows there).
    """

    def __init__(
        self, proc: str = "/proc", kvm_dir: str | None = None, full_every: int = 30
    ) -> None:
        self.proc, self.kvm_dir, self.full_every = proc, kvm_dir, full_every
        self.boot = _boot_time(proc)
        self.hz = os.sysconf("SC_CLK_TCK")
        self.full_scans = 0
        self._last: dict[VmKey, VmProcess] | None = None
        self._last_entries: frozenset[str] | None = None
        self._reused = 0

    def _kvm_fds(self, pid: str) -> tuple[list[int], int]:
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
        """The VmProcess for `pid`, or None if it is gone (or holds no VM fd when unasked)."""
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
        return VmProcess(
            VmKey(pid, start_ticks),
            self.boot + timedelta(seconds=start_ticks / self.hz),
            comm,
            text[:CMDLINE_HEAD],
            vcpus,
            tuple(sorted(vm_fds)),
        )

    def _entries(self) -> frozenset[str] | None:
        if self.kvm_dir is None:
            return None
        try:
            return frozenset(n for n in os.listdir(self.kvm_dir) if "-" in n)
        except OSError:
            return None

    def scan(self) -> dict[VmKey, VmProcess]:
        """Every process on the host that holds a KVM VM fd now."""
        entries = self._entries()
        unchanged = entries is not None and entries == self._last_entries
        if unchanged and self._last is not None and self._reused < self.full_every:
            self._reused += 1
            return dict(self._last)
        self._last = self.scan_proc()
        self._last_entries, self._reused = entries, 0
        return dict(self._last)

    def scan_proc(self) -> dict[VmKey, VmProcess]:
        """A full pass over /proc."""
        self.full_scans += 1
        found: dict[VmKey, VmProcess] = {}
        for name in os.listdir(self.proc):
            if not name.isdigit():
                continue
            vm_fds, vcpus = self._kvm_fds(name)
            if vm_fds:
                vm = self.describe(int(name), vm_fds, vcpus)
                if vm is not None:
                    found[vm.key] = vm
        return found
