"""Bodies of the host view (`GET /api/hosts`): every host, every VM on it, its busiest doorbells."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas import ExitRow, VmOut


class HostVmOut(VmOut):
    """A VM with its doorbell figures over the window."""

    writes_hz: float | None = Field(None, description="guest writes/s the observer counted")
    userspace_hz: float | None = Field(None, description="of them, exits to userspace per second")
    in_kernel_share: float | None = Field(
        None, description="share (0..1) of the writes that stayed in the kernel; null: none"
    )
    exits_hz: float = Field(0.0, description="userspace exits/s (worker's counter if owned)")
    observed: bool = Field(description="an observer counted this VM's writes in the window")
    busiest: list[ExitRow] = Field(description="its busiest doorbells, most written first")
    diagnoses: int = Field(0, description="its doorbells with a diagnosis (see /exits)")
    top_diagnosis: ExitRow | None = Field(
        None,
        description="the doorbell of the first diagnosis: registered but exits before hot "
        "and unregistered, then the most vCPU time saved, then the most exits",
    )


class HostOut(BaseModel):
    """One host and every VM on it, owned and observed."""

    host: str
    vms: list[HostVmOut]
