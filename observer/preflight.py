"""Start the probe or say, in one sentence, what is missing and how to grant it.

Checked in the order a person would fix them: bpf(2) itself, tracefs, KVM's tracepoints,
attaching to them, reading other processes' fds. Nothing stays attached when a check fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

from observer.bpf import Map, ensure_mounted
from observer.bpf import syscall as sc
from observer.bpf.btf import BTF_DIR
from observer.bpf.libbpf import LibbpfMissing, VerifierError
from observer.bpf.tracefs import TRACEFS
from observer.probe import KvmProbe, missing_tracepoints, objects_present

GRANT = "run it as root, or grant CAP_BPF and CAP_PERFMON (docker: cap_add BPF, PERFMON)"


class ObserverUnavailable(RuntimeError):
    """The observer cannot run here; the message is one sentence saying why and what to do."""


def _check_bpf() -> None:
    try:
        Map(sc.MAP_TYPE_ARRAY, ctypes.c_uint32, ctypes.c_uint64, 1, "iosig_check").close()
    except OSError as e:
        if e.errno == errno.ENOSYS:
            raise ObserverUnavailable(
                "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL is off): iosignal observe needs "
                "a kernel built with BPF"
            ) from None
        if e.errno == errno.EPERM:
            raise ObserverUnavailable(
                f"creating BPF maps is not permitted for this process: {GRANT}"
            ) from None
        raise ObserverUnavailable(f"bpf(2) fails here ({e}): {GRANT}") from None


def _check_tracefs(root: str) -> None:
    try:
        ensure_mounted(root)
    except OSError as e:
        raise ObserverUnavailable(
            f"tracefs is not mounted at {root} and mounting it failed "
            f"({errno.errorcode.get(e.errno or 0, e.errno)}): mount it "
            f"(mount -t tracefs nodev {root}) or run as root (CAP_SYS_ADMIN mounts it)"
        ) from None
    missing = missing_tracepoints(root)
    if missing:
        raise ObserverUnavailable(
            f"this kernel has no {', '.join(missing)} tracepoint(s) in {root}/events: load "
            "KVM (modprobe kvm_intel or kvm_amd) on a kernel with tracepoints"
        )


def _check_proc() -> None:
    # Another user's /proc/PID/fd needs CAP_SYS_PTRACE: try PID 1, which every host has.
    try:
        os.listdir("/proc/1/fd")
    except PermissionError:
        raise ObserverUnavailable(
            "cannot read other processes' /proc/PID/fd to find VMs: run as root or grant "
            "CAP_SYS_PTRACE (docker: cap_add SYS_PTRACE, pid: host)"
        ) from None
    except FileNotFoundError:
        pass


def _check_btf() -> None:
    if not os.path.exists(os.path.join(BTF_DIR, "vmlinux")):
        raise ObserverUnavailable(
            f"this kernel has no BTF ({BTF_DIR}/vmlinux): the observer's programs are placed "
            "by it (CO-RE); use a kernel built with CONFIG_DEBUG_INFO_BTF"
        )
    if not objects_present():
        raise ObserverUnavailable(
            "the observer's compiled BPF objects are missing from observer/progs: run make bpf"
        )


def syscall_tracepoints(root: str = TRACEFS) -> bool:
    """The raw syscall tracepoints are there (raw_syscalls:sys_enter/sys_exit, with
    CONFIG_HAVE_SYSCALL_TRACEPOINTS): without them the observer counts but cannot hear
    registrations."""
    return all(
        os.path.exists(f"{root}/events/raw_syscalls/sys_{side}/id") for side in ("enter", "exit")
    )


def open_probe(
    tracefs: str = TRACEFS, *, empty: bool = False, registrations: bool = True
) -> KvmProbe:
    """Every check, then the attached probe; ObserverUnavailable says what is missing."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise ObserverUnavailable("iosignal observe runs on x86_64 Linux (KVM's tracepoints)")
    _check_bpf()
    _check_tracefs(tracefs)
    _check_btf()
    _check_proc()
    try:
        probe = KvmProbe(empty=empty, registrations=registrations and syscall_tracepoints(tracefs))
        probe.registrations_asked = registrations
        return probe
    except LibbpfMissing as e:
        raise ObserverUnavailable(f"{e}: the observer loads its programs with libbpf") from None
    except VerifierError as e:
        raise ObserverUnavailable(
            f"this kernel's kvm tracepoints do not fit the counting programs: {e}"
        ) from None
    except PermissionError as e:
        raise ObserverUnavailable(
            f"attaching to the kvm tracepoints was refused ({e}): {GRANT}"
        ) from None
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOENT):
            raise ObserverUnavailable(
                f"this kernel cannot attach BPF programs to tracepoints ({e}): it needs "
                "CONFIG_BPF_EVENTS and CONFIG_PERF_EVENTS"
            ) from None
        raise ObserverUnavailable(f"attaching the counting programs failed: {e}") from None
