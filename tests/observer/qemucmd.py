"""QEMU's command line for the observer's tests (tests/observer/qemu.py runs it), and perf's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qemutrace import KERNEL_EVENTS

QEMU = "qemu-system-x86_64"
# Where SeaBIOS puts the virtio-blk queue-notify register with this command line: BAR0 at
# 0xc000 (the largest I/O BAR, so placed first) + 0x10. The trace says it too (notify_port).
NOTIFY_PORT = 0xC010
DISK_BYTES = 1 << 20  # SeaBIOS gives a 1 MiB disk a plain geometry (2/16/63)
TRACE_EVENTS = (
    "kvm_set_ioeventfd_pio",  # every KVM_IOEVENTFD call, assign and deassign
    "kvm_set_ioeventfd_mmio",
    "virtio_queue_notify",  # a queue kick QEMU handled, either path
    "virtio_blk_handle_read",  # a read request
    "virtio_set_status",  # the driver's status writes (7 = DRIVER_OK starts the ioeventfd)
    "pci_update_mappings_add",  # the firmware placing the BARs
    "pci_update_mappings_del",
)


def command(
    workdir: Path,
    name: str,
    ioeventfd: bool,
    memory_mb: int,
    firmware_log: bool,
    iothread: str | None = None,
) -> list[str]:
    """QEMU's command line: one legacy virtio-blk disk, a debug console, QMP on stdio.

    Each port write of the firmware is a slow exit here, so what only costs time is left out:
    `-display none`, not `-nographic` (which has SeaBIOS draw a serial console on a port with
    no UART); no kvmvapic option ROM; and SeaBIOS's log on the debug console only when asked
    (it logs there when the port reads back 0xe9, QEMU's default). `iothread`: the disk's
    queue is served by an IOThread of that id (its thread is named "IO <id>"), not the main
    loop."""
    disk = f"file={workdir / 'disk.img'},format=raw,if=none,id=disk0,readonly=on"
    blk = "virtio-blk-pci,drive=disk0,disable-modern=on,num-queues=1"
    objects = ["-object", f"iothread,id={iothread}"] if iothread else []
    if iothread:
        blk += f",iothread={iothread}"
    debugcon = "isa-debugcon,iobase=0x402,chardev=debugcon" + (
        "" if firmware_log else ",readback=0"
    )
    traces = [a for event in TRACE_EVENTS for a in ("-trace", event)]
    return [
        QEMU, "-accel", "kvm", "-name", f"{name},debug-threads=on",
        "-display", "none", "-nodefaults", "-m", str(memory_mb), "-smp", "1",
        "-global", "kvm-apic.vapic=false",
        *objects, "-drive", disk, "-device", f"{blk},ioeventfd={'on' if ioeventfd else 'off'}",
        "-chardev", f"file,id=debugcon,path={workdir / 'debugcon.log'}", "-device", debugcon,
        "-msg", "timestamp=on", *traces, "-D", str(workdir / "trace.log"),
        "-qmp", "stdio",
    ]  # fmt: skip


IO_EXITS = "errno == 0 && (reason == 2 || reason == 6)"  # KVM_EXIT_IO, KVM_EXIT_MMIO


def perf_events(pio_ports: Sequence[int]) -> list[str]:
    """`perf stat` arguments: KERNEL_EVENTS, kvm_pio filtered to writes to each port, then the
    userspace exits that are accesses (the tracepoint filters run in the kernel: exact)."""
    args = [a for event in KERNEL_EVENTS for a in ("-e", event)]
    for port in pio_ports:
        args += ["-e", "kvm:kvm_pio", "--filter", f"port == {port:#x} && rw == 1"]
    return [*args, "-e", "kvm:kvm_userspace_exit", "--filter", IO_EXITS]
