"""Fixtures for the worker core: a real started Machine, and raw KVM fds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.guest.boot import GuestVm
from worker.kvm import Kvm
from worker.machine import Machine


@pytest.fixture
def machine(kvm_path: str) -> Iterator[Machine]:
    """A started Machine (real VM, guest idle); closed after the test."""
    m = Machine(kvm_path)
    m.start()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def kvm(kvm_path: str) -> Iterator[Kvm]:
    """The opened, checked /dev/kvm."""
    k = Kvm.open(kvm_path)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture
def guest_vm(kvm: Kvm) -> Iterator[GuestVm]:
    """A bare VM with the guest loaded and its vCPU in long mode (no thread)."""
    g = GuestVm(kvm)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture
def binutils() -> None:
    """`as` and `ld` to re-assemble the guest (fails in CI when missing, else skips)."""
    import os
    import shutil

    if shutil.which("as") and shutil.which("ld"):
        return
    message = "binutils (as, ld) is not available: apt-get install binutils"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
