"""The doorbell benchmark's paths, by name and in table order: what `iosignal bench --path`, the
API and the page accept. worker/bench.py says how each one-way path rings, worker/roundtripbench.py
how each round trip (a kick answered by an interrupt) is answered."""

from __future__ import annotations

# name -> the userspace path it is compared with (None for the userspace paths themselves)
BENCH_PATHS: dict[str, str | None] = {
    "userspace-pio": None,
    "userspace-mmio": None,
    "ioeventfd-pio": "userspace-pio",
    "ioeventfd-mmio": "userspace-mmio",
    "ioeventfd-mmio-len0": "userspace-mmio",
    "ioeventfd-datamatch": "userspace-pio",
    "roundtrip-userspace": None,
    "roundtrip-ioeventfd-irqfd": "roundtrip-userspace",
    "roundtrip-ioeventfd-irqfd-poll": "roundtrip-userspace",
}
