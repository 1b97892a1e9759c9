"""`iosignal observe` as a process on real KVM, real BPF and a real database (SQLite and
PostgreSQL): exact counts per VM, VMs told apart, exits noticed, nothing left attached."""

from __future__ import annotations

import signal

from sqlalchemy import select
from support import ring_together, stored, wait_for

from contract.db import make_engine
from contract.models import Feed, Vm
from observer.bpf import loaded_programs

IOEVENTFD_PORT, USER_PORT = 0x510, 0x520


def _ours() -> list[str]:
    return [name for _, name in loaded_programs() if name.startswith("iosig_")]


def _vm(engine, pid: int):
    with engine.connect() as conn:
        return conn.execute(select(Vm).where(Vm.pid == pid, Vm.kind == "observed")).first()


def _sums(engine, vm_id: int, port: int) -> tuple[int, int]:
    with engine.connect() as conn:
        counts = [
            c
            for (key, _), c in stored(conn, vm_id, Feed.OBSERVED).items()
            if key == ("pio", port, 4)
        ]
    return (sum(c[0] for c in counts), sum(c[1] for c in counts))


def test_two_vmms_are_counted_exactly_and_an_exit_is_noticed(db_url, observer, vmm) -> None:
    engine = make_engine(db_url)
    obs = observer(db_url)
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    rows = {v: wait_for(f"VM {v.pid} discovered", lambda v=v: _vm(engine, v.pid)) for v in (a, b)}
    assert rows[a].vcpus == 1 and rows[a].state == "running" and rows[a].ended_at is None
    assert "vmm.py" in rows[a].cmdline and rows[a].started_at is not None
    rings = {a: (4000, 900), b: (1500, 2200)}

    ring_together(rings, IOEVENTFD_PORT, USER_PORT)
    for v, (n, m) in rings.items():
        vm_id = rows[v].id
        kernel = (vm_id, IOEVENTFD_PORT, (n, 0))
        user = (vm_id, USER_PORT, (m, m))
        for what, (i, port, want) in (("in-kernel", kernel), ("userspace", user)):
            wait_for(f"the {what} writes", lambda i=i, p=port, w=want: _sums(engine, i, p) == w)
        own = v.counts()  # the VMM's own counters: eventfd signals and userspace exits
        assert own["signals"][str(IOEVENTFD_PORT)] == n
        assert ["pio", USER_PORT, 4, m] in own["exits"]
    a.quit()
    ended = wait_for("VM a marked ended", lambda: (r := _vm(engine, a.pid)) and r.ended_at and r)
    assert ended.state == "stopped"
    assert _sums(engine, rows[a].id, IOEVENTFD_PORT) == (4000, 0)  # nothing lost or added
    assert _vm(engine, b.pid).ended_at is None
    assert obs.stop(signal.SIGTERM) == 0, obs.log()
    # tracing programs are freed after an RCU grace period once detached: gone within seconds
    wait_for("every program detached and freed", lambda: _ours() == [], 10)
    engine.dispose()


def test_after_kill_9_nothing_stays_attached(empty_sqlite_url, observer) -> None:
    from contract.migrate import upgrade

    upgrade(empty_sqlite_url)
    obs = observer(empty_sqlite_url)
    wait_for("the observer's programs", lambda: len(_ours()) >= 4)
    assert obs.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_for("every program detached and freed", lambda: _ours() == [])


def test_the_workers_own_vm_agrees_with_its_counters(db_url, observer, kvm_path) -> None:
    """The observer writes a worker's VM into its owned row: eventfd signals = in-kernel writes,
    the worker's exit counter = userspace exits."""
    import os

    from worker import store
    from worker.guest.table import Ring
    from worker.machine import Machine

    engine = make_engine(db_url)
    machine = Machine(kvm_path)
    machine.start()
    try:
        vm_id = store.claim_vm(engine, "agree", machine.info())
        observer(db_url)

        def linked():
            with engine.connect() as conn:
                return conn.execute(select(Vm.comm).where(Vm.id == vm_id)).scalar()

        wait_for("the observer to link the worker's VM", linked)
        machine.register(1, "pio", IOEVENTFD_PORT, 4, None)
        machine.ring([Ring("pio", IOEVENTFD_PORT, 4, 1, 3000), Ring("pio", USER_PORT, 4, 1, 700)])
        own = machine.collect()
        signals = sum(s.signals for s in own.signals if s.key == 1)
        exits = {(e.space, e.addr, e.len): e.exits for e in own.exits}
        assert (signals, exits[("pio", USER_PORT, 4)]) == (3000, 700)
        wait_for("in-kernel = signals", lambda: _sums(engine, vm_id, IOEVENTFD_PORT) == (3000, 0))
        wait_for("userspace = exits", lambda: _sums(engine, vm_id, USER_PORT) == (700, 700))
        assert _vm(engine, os.getpid()) is None  # no second, observed row for it
    finally:
        machine.close()
        engine.dispose()
