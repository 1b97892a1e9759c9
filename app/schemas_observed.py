"""Bodies of what the observer saw a VMM register (issue 18): observed registrations and the
diagnosis of a doorbell that exits to userspace."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Diagnosis(BaseModel):
    """Why a doorbell exits to userspace, or what registering it would save."""

    kind: Literal["registered_but_exits", "hot_unregistered"]
    text: str = Field(description='e.g. "registered but exits: datamatch 0x1, guest wrote 0x0"')
    reason: str | None = Field(
        None, description="registered_but_exits: datamatch, width or space (the kernel's rule)"
    )
    vcpu_share: float | None = Field(
        None,
        description="hot_unregistered: the vCPU time an ioeventfd would save, as a share of one "
        "vCPU (exits/s x (userspace - ioeventfd cost)); null when this host has no bench",
    )
    bench_run: int | None = Field(None, description="the bench run the costs came from")
    bench_host: str | None = None


class ObservedRegistrationOut(BaseModel):
    """A KVM_IOEVENTFD or KVM_IRQFD call another VMM made, as `iosignal observe` saw it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    vm_id: int
    source: Literal["observed"] = "observed"
    kind: Literal["ioeventfd", "irqfd"]
    space: str | None
    addr: int | None
    len: int | None
    datamatch: int | None = Field(description="null: any value (wildcard)")
    eventfd: int
    gsi: int | None = Field(description="irqfd: the interrupt it raises")
    flags: int
    state: Literal["active", "removed", "failed"]
    errno: str | None = Field(description="the kernel's refusal, e.g. EEXIST (state failed)")
    since: datetime | None = Field(
        description="when it was seen assigned; null: before the observer started (unknown)"
    )
    called_at: datetime
    deassigned_at: datetime | None
    known_since: datetime | None = Field(
        description="the host's observer start: calls before it are unknown, never guessed"
    )
