"""The control thread's `Waker`: NOTIFY on PostgreSQL, the app's poke through a FIFO on SQLite,
the poll behind both; and a poke that no worker hears costs nothing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.notify import notify_desired, poke, wake_path
from worker.waker import Waker

pytestmark = pytest.mark.serial  # wake-ups are timed: sub-second bounds


def _notify(engine: Engine, vm_id: int) -> None:
    with Session(engine) as db:
        notify_desired(db, vm_id)  # as the API does after its commit


def _timed_wait(waker: Waker, stop: threading.Event | None = None) -> float:
    t0 = time.monotonic()
    waker.wait(stop or threading.Event())
    return time.monotonic() - t0


def test_the_apps_notification_wakes_a_waiting_worker_long_before_its_poll(db_url) -> None:
    engine = make_engine(db_url)
    waker = Waker(db_url, poll_s=30.0, fallback_s=30.0, vm_id=7)
    try:
        if waker.listen:
            waker._connect()  # LISTEN before anything is sent
        else:
            waker.open_fifo()
            assert waker.fifo_path is not None and waker.fifo_path.exists()
        timer = threading.Timer(0.2, _notify, (engine, 7))
        timer.start()
        waited = _timed_wait(waker)
        timer.join()
        assert 0.15 < waited < 5.0 and waker.notified == 1
    finally:
        waker.close()
        engine.dispose()
    if not waker.listen:
        assert not waker.fifo_path.exists()  # a stopped worker leaves nothing to poke


def test_a_notify_for_another_vm_does_not_wake_this_worker(empty_postgres_url) -> None:
    url = empty_postgres_url
    engine = make_engine(url)
    waker = Waker(url, poll_s=0.05, fallback_s=0.6, vm_id=1)
    try:
        waker._connect()
        timer = threading.Timer(0.1, _notify, (engine, 2))
        timer.start()
        waited = _timed_wait(waker)  # VM 2's NOTIFY arrives, then the fallback
        timer.join()
        assert waited >= 0.55 and waker.notified == 0
        threading.Timer(0.1, _notify, (engine, 1)).start()
        assert _timed_wait(waker) < 0.5 and waker.notified == 1
    finally:
        waker.close()
        engine.dispose()


def test_sqlite_pokes_wake_only_their_vms_worker_and_many_pokes_make_one_wake(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'iosignal.db'}"
    mine, other = Waker(url, poll_s=0.3, vm_id=1), Waker(url, poll_s=0.3, vm_id=2)
    try:
        mine.open_fifo()
        other.open_fifo()
        pokers = [threading.Thread(target=poke, args=(wake_path(url, 1),)) for _ in range(8)]
        for t in pokers:  # several apps poking at once
            t.start()
        for t in pokers:
            t.join()
        assert _timed_wait(mine) < 0.1 and mine.notified == 1
        assert _timed_wait(mine) >= 0.25 and mine.notified == 1  # all eight were drained
        assert _timed_wait(other) >= 0.25 and other.notified == 0
    finally:
        mine.close()
        other.close()


def test_a_poke_no_worker_hears_neither_blocks_nor_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'iosignal.db'}"
    path = wake_path(url, 3)
    assert path == tmp_path / "iosignal.db.wake-3"
    t0 = time.monotonic()
    assert poke(path) is False  # no FIFO at all
    os.mkfifo(path)
    assert poke(path) is False  # a FIFO left by a killed worker: nobody reads it (ENXIO)
    path.unlink()
    path.write_text("not ours")
    assert poke(path) is False and path.read_text() == "not ours"  # never written into
    path.unlink()
    engine = make_engine(url)
    with Session(engine) as db:
        notify_desired(db, 3)
    engine.dispose()
    assert time.monotonic() - t0 < 0.5
    assert wake_path("sqlite://", 3) is None and wake_path("postgresql://h/db", 3) is None


def test_a_worker_that_never_reads_cannot_block_the_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'iosignal.db'}"
    waker = Waker(url, poll_s=0.05, vm_id=4)
    waker.open_fifo()
    try:
        t0 = time.monotonic()
        for _ in range(100_000):  # far more than a pipe holds (64 KiB): EAGAIN, ignored
            assert poke(wake_path(url, 4)) is True
        assert time.monotonic() - t0 < 10
        waker.wait(threading.Event())
        assert waker.notified == 1
    finally:
        waker.close()


def test_wakeup_off_or_a_fifo_in_the_way_leaves_the_poll(tmp_path: Path, db_url) -> None:
    off = Waker(db_url, poll_s=0.05, fallback_s=0.05, vm_id=5, wakeup=False)
    assert not off.listen and off.fifo_path is None
    assert _timed_wait(off) < 1.0  # a poll, not a block
    url = f"sqlite:///{tmp_path / 'iosignal.db'}"
    (tmp_path / "iosignal.db.wake-6").mkdir()  # something else has the FIFO's name
    blocked = Waker(url, poll_s=0.05, vm_id=6)
    assert _timed_wait(blocked) < 1.0 and blocked.fifo_path is None
    blocked.close()


def test_stop_ends_a_long_poll_within_half_a_second(tmp_path: Path) -> None:
    waker = Waker(f"sqlite:///{tmp_path / 'iosignal.db'}", poll_s=60.0, vm_id=8)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    try:
        assert _timed_wait(waker, stop) < 1.0
    finally:
        waker.close()
