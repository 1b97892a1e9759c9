"""The round trip on real KVM: N kicks give N interrupts on every path, and a device that stops
is an error, not a guest halted forever."""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterator

import pytest

from worker import guest
from worker.exits import GuestFault
from worker.guest.requests import MAX_PASS_REQUESTS, Request, read_counts, write_requests
from worker.kvm import Kvm
from worker.roundtrip import ANSWERS, DeviceStopped, RoundTrip

PORT, GPA = 0x0510, 0xD000_0000
N = 500


@pytest.fixture
def trips(kvm: Kvm) -> Iterator[list[RoundTrip]]:
    """RoundTrips a test opens; every one is closed after it, however it ended."""
    opened: list[RoundTrip] = []
    try:
        yield opened
    finally:
        for trip in opened:
            trip.close()


def _trip(trips: list[RoundTrip], kvm: Kvm, answer: str, request: Request, **kw) -> RoundTrip:
    trip = RoundTrip(kvm, answer, request, **kw)
    trips.append(trip)
    return trip


def test_reassembling_the_source_gives_the_committed_binary(binutils: None) -> None:
    assert guest.assemble(guest.ROUNDTRIP_SOURCE) == guest.image(guest.ROUNDTRIP_IMAGE)


# A spinning guest and a spinning consumer need a core each to be quick; on a busy machine each
# request may wait for a scheduler tick, so that pair runs fewer requests.
CASES = [(answer, wait, N) for answer in ANSWERS for wait in ("hlt", "spin")]
CASES[-1] = ("irqfd-poll", "spin", 20)


@pytest.mark.parametrize(("answer", "wait", "n"), CASES)
def test_n_kicks_give_exactly_n_interrupts(kvm: Kvm, trips, answer: str, wait: str, n: int) -> None:
    trip = _trip(trips, kvm, answer, Request("pio", PORT, 7, wait))
    for count in (n, 1, n):  # passes of any size, one after another
        result = trip.run_pass(count)
        assert len(result.rtts) == count and min(result.rtts) > 0
        assert result.ticks >= sum(result.rtts) and result.seconds > 0
    counts = read_counts(trip.vm.mem)
    assert counts.kicks == counts.interrupts == 2 * n + 1 and counts.passes == 3
    if trip.consumer is None:
        assert trip.exits == 2 * n + 1  # each kick left KVM_RUN once and was answered once
    else:
        assert trip.consumer.kicks == trip.consumer.answers == 2 * n + 1
        assert trip.exits == 0  # the ioeventfd caught every kick in the kernel


@pytest.mark.parametrize("answer", ["exit", "irqfd"])
def test_an_mmio_doorbell_round_trips_too(kvm: Kvm, trips, answer: str) -> None:
    trip = _trip(trips, kvm, answer, Request("mmio", GPA, 1, "hlt"))
    trip.run_pass(N)
    assert read_counts(trip.vm.mem).interrupts == N


def test_a_consumer_that_stops_is_a_clear_error_not_a_hung_vcpu(kvm: Kvm, trips) -> None:
    trip = _trip(trips, kvm, "irqfd", Request("pio", PORT, 1, "hlt"))
    consumer = trip.consumer
    assert consumer is not None

    def stop_after_some_answers() -> None:
        while consumer.answers < 50:
            threading.Event().wait(0.001)
        consumer.stop()  # as if the thread were killed: kicks from now on go unanswered

    killer = threading.Thread(target=stop_after_some_answers)
    killer.start()
    with pytest.raises(DeviceStopped, match=r"device consumer stopped .* after answering \d+"):
        trip.run_pass(MAX_PASS_REQUESTS)  # far more requests than the consumer lives for
    killer.join()
    counts = read_counts(trip.vm.mem)
    assert counts.kicks == counts.interrupts + 1 == consumer.answers + 1  # one kick unanswered
    with pytest.raises(DeviceStopped, match="device consumer stopped"):
        trip.run_pass(1)  # the guest is still waiting: no more passes on this VM


def test_a_consumer_that_crashes_names_its_error(kvm: Kvm, trips) -> None:
    trip = _trip(trips, kvm, "irqfd-poll", Request("pio", PORT, 1, "hlt"))
    consumer = trip.consumer
    assert consumer is not None
    consumer.irq_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0] + 10  # never open: EBADF
    with pytest.raises(DeviceStopped, match=r"OSError: \[Errno 9\] Bad file descriptor"):
        trip.run_pass(N)
    assert not consumer.alive and (consumer.kicks, consumer.answers) == (1, 0)


def test_closing_mid_pass_kicks_the_halted_vcpu_out(kvm: Kvm, trips) -> None:
    trip = _trip(trips, kvm, "irqfd", Request("pio", PORT, 1, "hlt"))
    trip.run_pass(1)
    assert trip.consumer is not None
    trip.consumer.stop()  # the next kick is never answered
    write_requests(trip.vm.mem, trip.request, 1)
    # A pass nobody watches any more, as when Ctrl-C lands in run_pass.
    trip._pass = trip._pool.submit(trip._run_until_pass_done)
    closing = threading.Thread(target=trip.close)
    closing.start()
    closing.join(30)  # a bound for the test only: close() returns as soon as the kick lands
    assert not closing.is_alive(), "close() hung on a vCPU halted for good"
    assert isinstance(trip._pass.exception(), DeviceStopped)


def test_a_pass_past_its_timeout_is_stopped(kvm: Kvm, trips) -> None:
    # No round trip takes 0 s: the first look at the running pass finds it overdue.
    trip = _trip(trips, kvm, "exit", Request("pio", PORT, 1, "hlt"), timeout=0)
    with pytest.raises(DeviceStopped, match="did not finish within 0 s"):
        trip.run_pass(MAX_PASS_REQUESTS)


def test_a_kick_no_device_answers_reaches_userspace_as_a_fault(kvm: Kvm, trips) -> None:
    trip = _trip(trips, kvm, "irqfd", Request("pio", PORT, 1, "hlt"))
    trip.request = trip.request._replace(addr=PORT + 4)  # the guest rings where no ioeventfd is
    with pytest.raises(GuestFault, match="port 0x514 write reached userspace unanswered"):
        trip.run_pass(1)


def test_request_table_rules() -> None:
    mem = memoryview(bytearray(guest.TABLE_END))
    with pytest.raises(ValueError, match="0 to 65536 requests"):
        write_requests(mem, Request("pio", PORT, 1, "hlt"), MAX_PASS_REQUESTS + 1)
    with pytest.raises(ValueError, match="wait must be one of hlt, spin"):
        write_requests(mem, Request("pio", PORT, 1, "nap"), 1)
    with pytest.raises(ValueError, match="answer must be one of exit, irqfd, irqfd-poll"):
        RoundTrip(None, "email", Request("pio", PORT, 1, "hlt"))  # type: ignore[arg-type]
