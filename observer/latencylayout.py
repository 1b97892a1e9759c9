"""The ctypes side of kvm_latency.bpf.c's maps (declared in observer/progs/iosignal.h).

doorbells      HASH AccessKey -> DoorbellLatency  an in-kernel doorbell's consumer and counts
hists          HASH HistKey -> u64                one bucket of a doorbell's stage histogram
latency_drops  PERCPU_ARRAY 0 -> LatencyDrops     what could not be paired or recorded

All counts only grow while the programs are attached: a reader subtracts its last reading.
tests/observer/test_progs.py checks every size and offset against the object's BTF.
"""

from __future__ import annotations

import ctypes

from observer.layout import AccessKey

STAGE_RUN, STAGE_IRQ, STAGE_WAKE = 0, 1, 2
# what each stage times, by the name the API, the store and /metrics use
STAGES = {STAGE_RUN: "kick_to_run", STAGE_IRQ: "kick_to_irq", STAGE_WAKE: "irq_to_vcpu"}


class DoorbellLatency(ctypes.Structure):
    """One in-kernel doorbell's consumer and counts since the programs were attached."""

    _fields_ = [
        ("kicks", ctypes.c_uint64),  # guest writes since its first kick woke a consumer
        ("wakes", ctypes.c_uint64),  # kicks whose eventfd signal woke the consumer
        ("exits", ctypes.c_uint64),  # kicks that exited to the VMM instead
        ("coalesced", ctypes.c_uint64),  # kicks that met an earlier unanswered one
        ("answered", ctypes.c_uint64),  # interrupts paired with a kick of this doorbell
        ("stale", ctypes.c_uint64),  # unanswered kicks given up after a second
        ("consumer_tid", ctypes.c_uint32),
        ("consumer_tgid", ctypes.c_uint32),
        ("vector", ctypes.c_uint32),
        ("vcpu_id", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("process", ctypes.c_char * 16),
    ]


class HistKey(ctypes.Structure):
    """One bucket of one doorbell's histogram of one stage."""

    _fields_ = [
        ("key", AccessKey),
        ("stage", ctypes.c_uint32),
        ("slot", ctypes.c_uint32),
    ]


class LatencyDrops(ctypes.Structure):
    """What the latency programs could not pair or record."""

    _fields_ = [
        ("map_full", ctypes.c_uint64),
        ("irq_unpaired", ctypes.c_uint64),  # interrupts from a consumer with no kick unanswered
        ("mixed", ctypes.c_uint64),  # kicks that met another doorbell's unanswered kick
        ("no_storage", ctypes.c_uint64),
    ]
