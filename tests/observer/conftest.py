"""Fixtures for the observer: real BPF (root or CAP_BPF + CAP_PERFMON) and mounted tracefs."""

from __future__ import annotations

import ctypes
import os

import pytest
from support import need
from vmmproc import Vmm

from observer.bpf import Map, ensure_mounted
from observer.bpf import syscall as sc


def _bpf_works() -> bool:
    try:
        Map(sc.MAP_TYPE_ARRAY, ctypes.c_uint32, ctypes.c_uint64, 1, "probe").close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def bpf() -> None:
    """bpf(2) usable here (fails in CI when not, else skips)."""
    need("eBPF", _bpf_works(), "run as root, or grant CAP_BPF and CAP_PERFMON")


@pytest.fixture(scope="session")
def tracefs(bpf: None) -> str:
    """tracefs mounted at /sys/kernel/tracing, with KVM's tracepoints."""
    try:
        ensure_mounted()
    except OSError as e:
        need("tracefs", False, f"{e}; run as root (CAP_SYS_ADMIN mounts it)")
    ok = os.path.isdir("/sys/kernel/tracing/events/kvm")
    need("KVM tracepoints", ok, "load the kvm module (a kernel with KVM and tracepoints)")
    return "/sys/kernel/tracing"


@pytest.fixture
def vmm(kvm_path: str):
    """Factory: start a test VMM process with ioeventfds on the given ports; all killed after."""
    started: list[Vmm] = []

    def start(*ports: int, datamatch: dict[int, int] | None = None) -> Vmm:
        v = Vmm(*ports, datamatch=datamatch)
        started.append(v)
        return v

    yield start
    for v in started:
        v.kill()


class Observer:
    """`iosignal observe` as its own process, writing to `url` (None: --no-database), with
    more arguments in `args` (e.g. --metrics-address)."""

    def __init__(self, url: str | None, log_path, interval_s: float = 0.2, args=()) -> None:
        import subprocess
        import sys

        env = {**os.environ, "IOSIGNAL_SAMPLE_INTERVAL_S": str(interval_s)}
        if url is not None:
            env["IOSIGNAL_DATABASE_URL"] = url
        else:
            args = ("--no-database", *args)
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "observe", *args],
            env=env,
            stdout=open(log_path, "w"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """What it printed so far."""
        return self.log_path.read_text()

    def stop(self, sig: int = 15) -> int:
        """Send `sig` (SIGTERM by default) and wait for its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


@pytest.fixture
def observer(tracefs: str, tmp_path):
    """Factory: start `iosignal observe` on a database URL; killed after the test."""
    started: list[Observer] = []

    def start(url: str | None, interval_s: float = 0.2, args=()) -> Observer:
        o = Observer(url, tmp_path / f"observer{len(started)}.log", interval_s, args)
        started.append(o)
        return o

    yield start
    for o in started:
        if o.proc.poll() is None:
            o.proc.kill()
            o.proc.wait(30)
