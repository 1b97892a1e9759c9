"""Fixtures for the observer: real BPF (root or CAP_BPF + CAP_PERFMON) and mounted tracefs."""

from __future__ import annotations

import ctypes
import os

import pytest

from observer.bpf import Map, ensure_mounted
from observer.bpf import syscall as sc


def need(part: str, ok: bool, how: str) -> None:
    """tests/conftest.py's rule (that module is shadowed here): fail in CI, else skip."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {part} is not available: {how}", pytrace=False)
    pytest.skip(f"{part} is not available: {how}")


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
