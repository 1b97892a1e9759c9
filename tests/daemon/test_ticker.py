"""The daemons' floor: the sampling tick on a fake clock (missed ticks are skipped and counted,
never burst) and the signal handlers (a first signal asks, a second forces)."""

from __future__ import annotations

from support import FakeTime

from daemon.ticker import Ticker


def test_a_slow_collect_skips_the_ticks_it_overran_and_keeps_the_schedule() -> None:
    fake = FakeTime(waits=6)
    collected: list[float] = []

    def collect() -> float:
        collected.append(fake.now)
        if len(collected) == 2:
            fake.now += 0.35  # this collect overran 3.5 ticks of 0.1 s
        return fake.now

    ticker = Ticker(collect, lambda _batch: None, interval_s=0.1, clock=fake.clock)
    ticker.run(fake)  # type: ignore[arg-type]  # quacks like threading.Event
    assert ticker.missed == 3
    assert ticker.ticks == 6
    # Ticks stay on the original 0.1 s grid: 100.1, 100.2, (overrun to 100.55), 100.6, ...
    assert [round(t - 100.0, 6) for t in collected[:6]] == [0.1, 0.2, 0.6, 0.7, 0.8, 0.9]
    assert len(collected) == 7  # plus the last collect on stop


def test_interval_is_never_below_100_ms() -> None:
    assert Ticker(lambda: None, lambda _b: None, interval_s=0.01).interval_s == 0.1


def test_first_signal_sets_stop_and_a_second_forces_exit() -> None:
    import subprocess
    import sys

    script = (
        "import logging, os, signal, threading, time\n"
        "from daemon.signals import install_signal_handlers\n"
        "stop = threading.Event()\n"
        "install_signal_handlers(stop, logging.getLogger('test'))\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(0.1)\n"
        "print('stop set' if stop.is_set() else 'stop not set', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(5)\n"
        "print('still running')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "stop set"
    assert done.returncode == 1
