"""The Prometheus collectors behind `GET /metrics`: counters, liveness and the workers' own health
read from the database on each scrape (any app replica answers the same), and this app process's
own stream counters."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.samples import observed
from app.api.samples.exits import exits_since_start
from app.api.stream.hub import StreamHub
from app.api.vms.liveness import heartbeat_age, is_alive
from contract.models import Ioeventfd, RegState, Vm

OBSERVED_ADDRS_PER_VM = 50  # series per VM and metric: a label set per address is kept bounded
# Help for each of the worker's own counters (contract.models.WorkerHealth, columns of `vms`).
WORKER_HEALTH_HELP: dict[str, str] = {
    "missed_ticks": "sampling ticks the worker skipped because a collect overran",
    "dropped_samples": "samples the worker dropped: buffer full through an outage, or refused",
    "lock_errors": "sample writes of the worker that met a locked SQLite database",
}


class DatabaseCollector(Collector):
    """Reads counters and liveness from the database when collected (no state in the app)."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family."""
        vms = {vm.id: vm for vm in self.db.scalars(select(Vm))}
        yield from self._liveness(vms)
        yield from self._worker_health(vms)
        yield self._signals(vms)
        yield self._exits(vms)
        yield from self._observed(vms)

    def _liveness(self, vms: dict[int, Vm]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "iosignal_worker_up", "1 while the VM's worker heartbeats", labels=["vm"]
        )
        age = GaugeMetricFamily(
            "iosignal_worker_heartbeat_age_seconds",
            "seconds since the last heartbeat",
            labels=["vm"],
        )
        for vm in vms.values():
            up.add_metric([vm.name], 1.0 if is_alive(vm) else 0.0)
            seconds = heartbeat_age(vm.heartbeat_at)
            if seconds is not None:
                age.add_metric([vm.name], seconds)
        yield up
        yield age

    def _worker_health(self, vms: dict[int, Vm]) -> Iterator[Metric]:
        for column, text in WORKER_HEALTH_HELP.items():
            family = CounterMetricFamily(
                f"iosignal_worker_{column}",
                f"{text}, since it started (as of its last heartbeat)",
                labels=["vm"],
            )
            for vm in vms.values():
                family.add_metric([vm.name], float(getattr(vm, column)))
            yield family

    def _signals(self, vms: dict[int, Vm]) -> Metric:
        family = CounterMetricFamily(
            "iosignal_signals",
            "eventfd signals counted per registration",
            labels=["vm", "id", "space", "addr", "len", "label", "state"],
        )
        regs = self.db.scalars(select(Ioeventfd).where(Ioeventfd.state != RegState.REMOVED.value))
        for reg in regs:
            vm = vms.get(reg.vm_id)
            labels = [
                vm.name if vm else str(reg.vm_id),
                str(reg.id),
                reg.space,
                f"0x{reg.addr:x}",
                str(reg.len),
                reg.label or "",
                reg.state,
            ]
            family.add_metric(labels, float(reg.signals_total))
        return family

    def _exits(self, vms: dict[int, Vm]) -> Metric:
        family = CounterMetricFamily(
            "iosignal_exits",
            "userspace exits per address since the VM started (rolled-up minutes included)",
            labels=["vm", "space", "addr", "len"],
        )
        for vm_id in sorted(vms):
            totals = exits_since_start(self.db, vm_id, vms[vm_id].rolled_up_until)
            for (space, addr, len_), count in sorted(totals.items()):
                labels = [vms[vm_id].name, space, f"0x{addr:x}", str(len_)]
                family.add_metric(labels, float(count))
        return family

    def _observed(self, vms: dict[int, Vm]) -> Iterator[Metric]:
        """What `iosignal observe` counted per VM and address, over the retained samples."""
        writes = CounterMetricFamily(
            "iosignal_observed_writes",
            "guest writes the observer counted per address (over the retained samples); the "
            f"{OBSERVED_ADDRS_PER_VM} busiest per VM, the rest summed as addr=other",
            labels=["vm", "kind", "space", "addr"],
        )
        userspace = CounterMetricFamily(
            "iosignal_observed_userspace",
            "of those writes, the ones that exited to userspace (in-kernel = writes - userspace)",
            labels=["vm", "kind", "space", "addr"],
        )
        for vm_id, per_addr in sorted(observed.retained_totals(self.db).items()):
            vm = vms.get(vm_id)
            if vm is None:
                continue
            for (space, addr), (w, u) in capped(per_addr).items():
                labels = [vm.name, vm.kind, space, addr]
                writes.add_metric(labels, float(w))
                userspace.add_metric(labels, float(u))
        yield writes
        yield userspace


Labelled = dict[tuple[str, str], tuple[int, int]]  # (space, addr label) -> (writes, userspace)


def capped(per_addr: dict[observed.Addr, observed.Counts]) -> Labelled:
    """Widths folded together, the busiest
    OBSERVED_ADDRS_PER_VM addresses kept and the rest summed per space as addr "other", so a
    guest that writes thousands of MMIO addresses cannot blow up the series count."""
    folded: dict[tuple[str, int], list[int]] = {}
    for (space, addr, _len), c in per_addr.items():
        slot = folded.setdefault((space, addr), [0, 0])
        slot[0] += c.writes
        slot[1] += c.userspace
    ranked = sorted(folded.items(), key=lambda kv: (-kv[1][0], kv[0]))
    out: Labelled = {}
    for i, ((space, addr), (w, u)) in enumerate(ranked):
        key = (space, f"0x{addr:x}") if i < OBSERVED_ADDRS_PER_VM else (space, "other")
        old = out.get(key, (0, 0))
        out[key] = (old[0] + w, old[1] + u)
    return out


class StreamCollector(Collector):
    """This app process's own counters: live-stream clients dropped for falling behind."""

    def __init__(self, hub: StreamHub | None) -> None:
        self.hub = hub  # None until someone has listened to /api/stream

    def collect(self) -> Iterator[Metric]:
        """Yield the stream counters of this process (each app replica has its own)."""
        dropped = CounterMetricFamily(
            "iosignal_stream_clients_dropped",
            "stream clients this app process dropped for falling behind (they reconnect)",
        )
        dropped.add_metric([], float(self.hub.drops if self.hub else 0))
        yield dropped
