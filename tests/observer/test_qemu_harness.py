"""The QEMU harness against Debian's QEMU with KVM: what its trace and perf's kernel counts say.

One QEMU run with ioeventfd=on and one with ioeventfd=off (each a few seconds, under perf),
shared by the tests of this module.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from guests.build import IMAGE, assemble, with_requests
from perfrecord import exits_after_writes
from qemu import NOTIFY_PORT, Qemu
from qemutrace import IoeventfdChange
from support import need, wait_for

REQUESTS = 7  # the guest's reads; SeaBIOS adds one (loading the boot sector)


def test_committed_guest_is_what_its_source_assembles_to() -> None:
    ok = bool(shutil.which("as") and shutil.which("ld"))
    need("binutils (as, ld)", ok, "apt-get install binutils")
    assert assemble() == IMAGE.read_bytes()


def test_the_request_count_is_patched_into_its_dword_only() -> None:
    sector = IMAGE.read_bytes()
    patched = with_requests(sector, 0x01020304)
    assert patched[0x1F0:0x1F4] == bytes([4, 3, 2, 1])
    assert patched[:0x1F0] == sector[:0x1F0] and patched[0x1F4:] == sector[0x1F4:]
    with pytest.raises(ValueError, match="32-bit"):
        with_requests(sector, -1)


def _run(workdir: Path, ioeventfd: bool) -> Qemu:
    need("QEMU", shutil.which("qemu-system-x86_64") is not None, "apt-get install qemu-system-x86")
    need("perf", shutil.which("perf") is not None, "apt-get install linux-perf")
    with Qemu(workdir, REQUESTS, ioeventfd=ioeventfd, perf=True, perf_record=True) as q:
        q.wait_done()
    return q


@pytest.fixture(scope="module")
def with_ioeventfd(kvm_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qemu]:
    yield _run(tmp_path_factory.mktemp("qemu-ioeventfd"), ioeventfd=True)


@pytest.fixture(scope="module")
def without_ioeventfd(kvm_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qemu]:
    yield _run(tmp_path_factory.mktemp("qemu-userspace"), ioeventfd=False)


def _notify_changes(q: Qemu) -> list[IoeventfdChange]:
    return [c for c in q.trace().ioeventfds() if c.addr == NOTIFY_PORT]


@pytest.mark.kvm
def test_qemu_quits_cleanly_and_the_firmware_puts_the_notify_port_at_bar0(
    with_ioeventfd: Qemu,
) -> None:
    assert with_ioeventfd.proc.returncode == 0
    assert with_ioeventfd.trace().notify_port() == NOTIFY_PORT


@pytest.mark.kvm
def test_qemu_probes_seven_ioeventfds_at_port_0_before_the_guest_runs(
    with_ioeventfd: Qemu, without_ioeventfd: Qemu
) -> None:
    # kvm_check_many_ioeventfds: assign 7 (port 0, datamatch 0..6), deassign them in reverse
    for q in (with_ioeventfd, without_ioeventfd):
        probe = q.trace().ioeventfds()[:14]
        assert [(c.addr, c.width, c.datamatch) for c in probe] == [(0, 2, True)] * 14
        assert [(c.value, c.assign) for c in probe] == [(v, True) for v in range(7)] + [
            (v, False) for v in reversed(range(7))
        ]


@pytest.mark.kvm
def test_with_ioeventfd_the_notify_port_is_assigned_at_driver_ok_and_deassigned_at_exit(
    with_ioeventfd: Qemu,
) -> None:
    trace = with_ioeventfd.trace()
    assign, deassign = _notify_changes(with_ioeventfd)
    assert (assign.space, assign.width, assign.datamatch, assign.value) == ("pio", 2, True, 0)
    assert (assign.assign, deassign.assign) == (True, False)
    assert (deassign.fd, deassign.width, deassign.value) == (assign.fd, 2, 0)
    assert trace.ioeventfds()[-1] == deassign  # the last change QEMU made
    assert assign.tid in with_ioeventfd.vcpu_tids()
    lines = trace.lines
    assigned = f"@{NOTIFY_PORT:#x} val=0x0 assign: 1"
    at = next(
        i for i, x in enumerate(lines) if x.event.startswith("kvm_set_") and assigned in x.args
    )
    # the driver's DRIVER_OK (status 7) starts QEMU's ioeventfd, before the first notify
    assert (lines[at - 1].event, lines[at - 1].args[-6:]) == ("virtio_set_status", " val 7")
    assert at < lines.index(trace.events("virtio_queue_notify")[0])


@pytest.mark.kvm
def test_without_ioeventfd_qemu_never_assigns_the_notify_port(without_ioeventfd: Qemu) -> None:
    assert without_ioeventfd.proc.returncode == 0
    assert _notify_changes(without_ioeventfd) == []
    assert len(without_ioeventfd.trace().ioeventfds()) == 14  # the start-up probe only


@pytest.mark.kvm
def test_each_request_is_one_notify_and_where_qemu_handles_it_tells_the_path(
    with_ioeventfd: Qemu, without_ioeventfd: Qemu
) -> None:
    requests = REQUESTS + 1  # SeaBIOS's own read of the boot sector
    # userspace: every notify is a write the vCPU thread took to QEMU
    off = without_ioeventfd.trace()
    (vcpu,) = without_ioeventfd.vcpu_tids()
    assert (off.reads(), off.notifies(), off.notifies(vcpu)) == (requests, requests, requests)
    # ioeventfd: the main loop reads the eventfd, once more for the kick QEMU gives at start
    on = with_ioeventfd.trace()
    (vcpu,) = with_ioeventfd.vcpu_tids()
    assert (on.reads(), on.notifies(), on.notifies(vcpu)) == (requests, requests + 1, 0)


@pytest.mark.kvm
def test_perf_counts_the_kernels_kvm_pio_per_process_and_per_port(
    with_ioeventfd: Qemu, without_ioeventfd: Qemu
) -> None:
    notify = f"kvm:kvm_pio@{NOTIFY_PORT:#x}"
    for q in (with_ioeventfd, without_ioeventfd):
        counts = q.kernel_counts()
        assert counts[notify] == REQUESTS + 1  # each guest write, whichever path took it
        assert counts["kvm:kvm_pio"] > counts[notify] and counts["kvm:kvm_userspace_exit"] > 0


@pytest.mark.kvm
def test_a_guest_asked_for_0_requests_reads_until_qemu_stops(kvm_path: str, tmp_path: Path) -> None:
    need("QEMU", shutil.which("qemu-system-x86_64") is not None, "apt-get install qemu-system-x86")
    with Qemu(tmp_path, 0) as q:
        q.wait_started()
        wait_for("200 reads", lambda: q.trace().reads() >= 200)
    assert q.proc.returncode == 0
    assert q.trace().reads() >= 200 and b"done" not in q.debugcon()


@pytest.mark.kvm
def test_perf_records_whether_each_notify_exited_to_userspace(
    with_ioeventfd: Qemu, without_ioeventfd: Qemu
) -> None:
    # SeaBIOS reads the ISR (BAR0 + 0x13) after each kick; QEMU serves it, so that read exits
    # itself: one exit before it is the read's own, two are the write's and the read's
    isr = NOTIFY_PORT + 3
    for q, exits in ((with_ioeventfd, 1), (without_ioeventfd, 2)):
        found = exits_after_writes(q.kernel_events(), NOTIFY_PORT)
        assert len(found) == REQUESTS + 1
        assert {(n, e.kind, e.rw, e.port) for n, e in found if e} == {(exits, "pio", "read", isr)}
