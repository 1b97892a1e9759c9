"""The latency programs against Debian's QEMU (debug-threads=on names every thread): the
consumer of the virtio-blk queue-notify port is the QEMU thread that QEMU itself says serves
the queue, the main loop by default and the disk's IOThread ("IO <id>") when it has one."""

from __future__ import annotations

from pathlib import Path

import pytest
from qemu import NOTIFY_PORT, Qemu

from observer.latency import Doorbell, LatencyProbe

pytestmark = [pytest.mark.kvm]

REQUESTS = 40


def _watch(workdir: Path, iothread: str | None) -> tuple[Qemu, dict[int, str], list[Doorbell]]:
    with LatencyProbe() as probe, Qemu(workdir, REQUESTS, iothread=iothread) as qemu:
        qemu.wait_done(120)
        names = qemu.thread_names()  # while QEMU runs
        seen = [d for d in probe.read() if d.tgid == qemu.pid]
    return qemu, names, seen


def _notify(seen: list[Doorbell]) -> Doorbell:
    found = [d for d in seen if (d.space, d.addr, d.len) == ("pio", NOTIFY_PORT, 2)]
    assert len(found) == 1, seen
    return found[0]


@pytest.mark.parametrize("iothread", [None, "io0"])
def test_the_notify_ports_consumer_is_the_thread_qemu_names(
    iothread: str | None, kvm_path: str, tracefs: str, tmp_path: Path
) -> None:
    qemu, names, seen = _watch(tmp_path, iothread)
    notify = _notify(seen)
    consumer = notify.consumer
    assert consumer.tgid == qemu.pid and consumer.process == names[qemu.pid]
    if iothread is None:  # the main loop: the process's first thread
        assert consumer.tid == qemu.pid
    else:
        assert names[consumer.tid] == f"IO {iothread}"
    assert consumer.comm == names[consumer.tid]
    assert not names[consumer.tid].startswith("CPU ")  # not the vCPU that kicked
    # each of the guest's requests kicked the port, and at least the first woke the consumer
    assert notify.kicks >= REQUESTS and notify.wakes >= 1
    assert sum(notify.hists.get("kick_to_run", {}).values()) >= 1
    print(f"consumer {consumer}; {notify.kicks} kicks, {notify.wakes} wakes, "
          f"{notify.answered} answered by an interrupt")  # fmt: skip
