"""`iosignal_doorbell_latency_seconds`: each in-kernel doorbell's stages as Prometheus
histograms, over the retained `doorbell_latency` minutes (bucket counts add).

The stored buckets are 8 per power of two; each lies inside one power of two, so folding them
into power-of-two `le` bounds (1 us to ~1 s, then +Inf) is exact and keeps ~22 series a stage.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.latency import add, slot_bounds
from contract.models import DoorbellLatency, Vm

LE_NS = [1 << p for p in range(10, 31)]  # 1.024 us .. 1.07 s


def _folded(hist: dict[int, int]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs over LE_NS and +Inf, and the sum in seconds (bucket
    middles: the stored buckets keep no sum of their own)."""
    counts = [0] * (len(LE_NS) + 1)
    total_ns = 0.0
    for slot, n in hist.items():
        low, high = slot_bounds(slot)
        total_ns += n * (low + high) / 2
        i = next((i for i, le in enumerate(LE_NS) if high <= le), len(LE_NS))
        counts[i] += n
    out, seen = [], 0
    for le, n in zip([*LE_NS, None], counts, strict=True):
        seen += n
        out.append(("+Inf" if le is None else repr(le / 1e9), float(seen)))
    return out, total_ns / 1e9


class LatencyCollector(Collector):
    """Reads the retained doorbell latency minutes when collected."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        """One histogram family, a series per VM, doorbell and stage."""
        family = HistogramMetricFamily(
            "iosignal_doorbell_latency_seconds",
            "in-kernel doorbell latency per stage: kick_to_run (the kick to its consumer thread "
            "running), kick_to_irq (to the consumer's interrupt), irq_to_vcpu (to the halted "
            "vCPU running); over the retained minutes",
            labels=["vm", "space", "addr", "consumer", "stage"],
        )
        names = {vm_id: name for vm_id, name in self.db.execute(select(Vm.id, Vm.name))}
        summed: dict[tuple[str, str, str, str, str], dict[int, int]] = {}
        rows = self.db.scalars(select(DoorbellLatency).order_by(DoorbellLatency.minute_at))
        for r in rows:
            vm = names.get(r.vm_id, str(r.vm_id))
            for stage, stored in r.hists.items():
                key = (vm, r.space, f"0x{r.addr:x}", r.consumer_comm, stage)
                add(summed.setdefault(key, {}), {int(s): n for s, n in stored.items()})
        for labels, hist in sorted(summed.items()):
            buckets, sum_s = _folded(hist)
            family.add_metric(list(labels), buckets, sum_s)
        yield family
