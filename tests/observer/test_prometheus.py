"""`iosignal observe --metrics-address` as a Prometheus target, on real KVM and BPF: a real
Prometheus scrapes it while external VMMs ring, and PromQL over the window equals what the
guests wrote; the fleet dashboard's queries all answer from that scrape; with a database the
observer writes and serves the same counts."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from promql import metric_names, selector_labels
from promserver import PrometheusServer, Scrape, scrape, value
from sqlalchemy import select
from support import free_port, ring_together, stored, wait_for

from contract.db import make_engine
from contract.models import Feed, Vm

IOEVENTFD_PORT, USER_PORT = 0x510, 0x520
ROUNDS = 6  # passes of each VMM, half a second apart: Prometheus scrapes (1 s) while they ring
PER_ROUND = ((2000, 300), (700, 600))  # each VMM's (in-kernel writes, userspace writes) a round
BOARD = Path(__file__).resolve().parents[2] / "grafana" / "iosignal-fleet.json"


def selector(name: str, pid: int, port: int) -> str:
    return f'{name}{{pid="{pid}", space="pio", addr="{port:#x}", len="4"}}'


def common_time(prom: PrometheusServer, want: dict[str, float]) -> float:
    """The first scrape's timestamp at which every selector in `want` had its value (one scrape
    stamps all of a target's series alike)."""

    def find() -> float | None:
        times: set[float] | None = None
        for sel, v in want.items():
            at = {t for t, x in prom.samples(f"{sel}[2m]") if x == v}
            times = at if times is None else times & at
        return min(times) if times else None

    return wait_for(f"Prometheus to scrape {want}", find, 30, 0.5)


@pytest.fixture
def prometheus(tmp_path):
    """Factory: a real Prometheus scraping one target every second; killed after the test."""
    started: list[PrometheusServer] = []

    def start(target: str) -> PrometheusServer:
        folder = tmp_path / f"prometheus{len(started)}"
        folder.mkdir()
        started.append(PrometheusServer(target, folder))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def test_increase_over_the_window_equals_what_the_guests_wrote(observer, vmm, prometheus) -> None:
    address = f"127.0.0.1:{free_port()}"
    obs = observer(None, args=("--metrics-address", address))
    wait_for("the observer's /metrics", lambda: scrape(address), 30)
    prom = prometheus(address)
    vms = [vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)]
    # one write to each doorbell first, so that every series exists before the window opens
    ring_together({v: (1, 1) for v in vms}, IOEVENTFD_PORT, USER_PORT)
    writes = {
        (v, p): selector("iosignal_guest_writes_total", v.pid, p)
        for v in vms
        for p in (IOEVENTFD_PORT, USER_PORT)
    }
    start = common_time(prom, dict.fromkeys(writes.values(), 1.0))
    for _ in range(ROUNDS):
        ring_together(dict(zip(vms, PER_ROUND, strict=True)), IOEVENTFD_PORT, USER_PORT)
        time.sleep(0.5)
    rung = {
        (v, p): ROUNDS * nm[i]
        for v, nm in zip(vms, PER_ROUND, strict=True)
        for i, p in enumerate((IOEVENTFD_PORT, USER_PORT))
    }
    final = {writes[k]: 1.0 + n for k, n in rung.items()}

    def observer_has_all() -> Scrape | None:
        now = scrape(address)
        return (
            now
            if now
            and all(
                value(now, "iosignal_guest_writes_total", pid=str(v.pid), addr=f"{p:#x}")
                == final[s]
                for (v, p), s in writes.items()
            )
            else None
        )

    own = wait_for("the observer's own counts", observer_has_all)
    end = common_time(prom, final)
    assert end - start >= 3  # several scrapes fell while the VMMs rang
    # The window opens and closes on scrapes, so increase() has nothing to extrapolate: it is
    # the counters' difference across the window, exact.
    window = f"{round((end - start) * 1000)}ms"
    for (v, p), n in rung.items():
        got = prom.query(f"increase({writes[v, p]}[{window}])", at=end)
        assert [float(r["value"][1]) for r in got] == [n], (v.pid, hex(p), got)
        mine = value(own, "iosignal_guest_writes_total", pid=str(v.pid), addr=f"{p:#x}")
        assert mine is not None and mine - 1 == n  # the observer's count, less the first write
        exits = selector("iosignal_guest_userspace_exits_total", v.pid, p)
        got = prom.query(f"increase({exits}[{window}])", at=end)
        assert float(got[0]["value"][1]) == (n if p == USER_PORT else 0)
    pids = "|".join(str(v.pid) for v in vms)
    total = prom.query(
        f'sum(increase(iosignal_guest_writes_total{{pid=~"{pids}", addr="{IOEVENTFD_PORT:#x}"}}'
        f"[{window}]))",
        at=end,
    )
    assert float(total[0]["value"][1]) == sum(
        n for (_, p), n in rung.items() if p == IOEVENTFD_PORT
    )
    for v, (n, m) in zip(vms, PER_ROUND, strict=True):  # the VMMs' own counters agree
        counts = v.counts()
        assert counts["signals"][str(IOEVENTFD_PORT)] == 1 + ROUNDS * n
        assert ["pio", USER_PORT, 4, 1 + ROUNDS * m] in counts["exits"]
    host = dict(next(ls for (n, ls) in own if n == "iosignal_observer_ticks_total"))["host"]
    fleet_board_reads_only_this_scrape(prom, own, end, window, host, pids)

    running = value(scrape(address), "iosignal_observer_vms", host=host)
    kept = value(own, "iosignal_guest_writes_total", pid=str(vms[0].pid), addr=f"{USER_PORT:#x}")
    vms[0].quit()
    wait_for(
        "the exit seen", lambda: value(scrape(address), "iosignal_observer_vms") == running - 1
    )
    after = scrape(address)  # an exited VM's last counts stay, for the next scrapes to read
    assert (
        value(after, "iosignal_guest_writes_total", pid=str(vms[0].pid), addr=f"{USER_PORT:#x}")
        == kept
    )
    assert value(after, "iosignal_vm_info", pid=str(vms[0].pid)) == 1
    assert obs.stop(signal.SIGTERM) == 0, obs.log()


def fleet_board_reads_only_this_scrape(
    prom: PrometheusServer, own: Scrape, at: float, window: str, host: str, pids: str
) -> None:
    """Every metric grafana/iosignal-fleet.json reads is on the scrape, by labels it carries,
    and every query answers from Prometheus (the board's variables set to this host and VMs)."""
    labels: dict[str, set[str]] = {}
    for name, ls in own:
        labels.setdefault(name, set()).update(k for k, _ in ls)
    board = json.loads(BOARD.read_text())
    used: set[str] = set()
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name in metric_names(expr):
                assert name in labels, f"{name} (in {expr!r}) is not on the observer's /metrics"
            for name, matched in selector_labels(expr).items():
                assert matched <= labels[name], (expr, matched - labels[name])
            used |= metric_names(expr)
            query = (
                expr.replace("$__rate_interval", window)
                .replace("$host", re.escape(host))
                .replace("$vm", pids)
            )
            assert prom.query(query, at=at), f"{panel['title']}: {query} answered nothing"
    exported = {n for n in labels if n.startswith("iosignal_")}
    assert exported <= used, exported - used  # every family the observer serves has a panel
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":  # label_values(metric{...}, label)
            metric, label = re.findall(
                r"label_values\((\w+)[^,]*,\s*(\w+)\)", variable["definition"]
            )[0]
            assert label in labels[metric], variable["definition"]


def test_with_a_database_it_writes_and_serves_the_same_counts(db_url, observer, vmm) -> None:
    engine = make_engine(db_url)
    address = f"127.0.0.1:{free_port()}"
    obs = observer(db_url, args=("--metrics-address", address))
    wait_for("the observer's /metrics (its programs attached)", lambda: scrape(address), 30)
    v = vmm(IOEVENTFD_PORT)
    v.ring("pio", IOEVENTFD_PORT, 4, 3000)
    v.ring("pio", USER_PORT, 4, 400)

    def stored_writes() -> dict[int, int]:
        with engine.connect() as conn:
            vm_id = conn.execute(
                select(Vm.id).where(Vm.pid == v.pid, Vm.kind == "observed")
            ).scalar()
            if vm_id is None:
                return {}
            out: dict[int, int] = {}
            for ((space, addr, length), _), c in stored(conn, vm_id, Feed.OBSERVED).items():
                if (space, length) == ("pio", 4):
                    out[addr] = out.get(addr, 0) + c[0]
            return out

    want = {IOEVENTFD_PORT: 3000, USER_PORT: 400}
    wait_for("the database's counts", lambda: {a: stored_writes().get(a) for a in want} == want)
    served = wait_for("the metrics", lambda: scrape(address))
    for port, n in want.items():
        assert value(served, "iosignal_guest_writes_total", pid=str(v.pid), addr=f"{port:#x}") == n
    for kind in ("samples", "registrations_lost", "map_full", "unmatched"):
        assert value(served, "iosignal_observer_drops_total", kind=kind) == 0, kind
    assert obs.stop(signal.SIGTERM) == 0, obs.log()
    engine.dispose()


def test_a_metrics_port_in_use_is_one_sentence_and_exit_1(observer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        obs = observer(None, args=("--metrics-address", address))
        assert obs.proc.wait(60) == 1
    errors = [line for line in obs.log().splitlines() if " ERROR " in line]
    assert errors == [errors[0]] and f"cannot serve metrics on {address}" in errors[0], obs.log()
    assert "in use" in errors[0]


@pytest.mark.parametrize("timing", [True, False], ids=["latency", "no-latency"])
def test_no_latency_leaves_the_scheduler_hooks_out(observer, timing: bool) -> None:
    address = f"127.0.0.1:{free_port()}"
    flag = "--latency" if timing else "--no-latency"
    obs = observer(None, args=("--metrics-address", address, flag))
    served = wait_for("the observer's /metrics", lambda: scrape(address), 30)
    attached = {
        dict(labels)["tracepoint"]
        for (name, labels) in served
        if name == "iosignal_observer_programs_attached"
    }
    assert "kvm_pio" in attached, obs.log()
    scheduler = {"sched_switch", "sched_waking"}
    assert attached & scheduler == (scheduler if timing else set()), attached
