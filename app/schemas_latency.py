"""Bodies of a VM's doorbell latency (issue 21): each in-kernel doorbell's consumer and the
percentiles of its stages, over a window and per minute."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class StageOut(BaseModel):
    """One stage of one doorbell over a span: how many were timed and their percentiles."""

    count: int
    p50_us: float | None
    p99_us: float | None


class ConsumerOut(BaseModel):
    """The thread the doorbell's kicks wake, by the kernel's names."""

    tid: int
    comm: str = Field(description='the thread\'s name, e.g. "IO iothread0" or "vhost-1234"')
    process: str = Field(description="its process's name")


class LatencyMinuteOut(BaseModel):
    """One minute of one doorbell."""

    minute_at: datetime
    kicks: int
    wakes: int
    stages: dict[str, StageOut]


class DoorbellLatencyOut(BaseModel):
    """One in-kernel doorbell of the VM over the window."""

    space: str
    addr: int
    len: int
    consumer: ConsumerOut
    kicks: int = Field(description="guest writes that stayed in the kernel")
    wakes: int = Field(description="kicks whose signal woke the consumer")
    suppressed: int = Field(description="kicks that woke nobody: the consumer was running")
    answered: int = Field(description="interrupts paired with a kick")
    coalesced: int = Field(description="kicks that met an unanswered kick (one interrupt)")
    stale: int = Field(description="kicks no interrupt of the consumer answered within 1 s")
    vector: int | None
    kicks_hz: float
    wakes_hz: float
    stages: dict[str, StageOut] = Field(
        description="kick_to_run, kick_to_irq, irq_to_vcpu (see docs/observer.md)"
    )
    minutes: list[LatencyMinuteOut]


class LatencyOut(BaseModel):
    """A VM's in-kernel doorbells and how long each takes to be heard."""

    vm_id: int
    since: datetime
    until: datetime
    doorbells: list[DoorbellLatencyOut]
