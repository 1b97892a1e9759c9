"""Bodies of the host view (`GET /api/hosts`): a page of VMs, sorted and searched, each with its
busiest doorbells, and every host's totals."""

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


class HostSummary(BaseModel):
    """One host and how many VMs of each kind it has."""

    host: str
    owned: int
    observed: int


class HostPage(BaseModel):
    """One page of the VMs that match, in the order asked, and every host (of the kind asked)."""

    total: int = Field(description="VMs that match the host, kind and search")
    page: int = Field(description="this page, from 1")
    per_page: int
    pages: int = Field(description="pages of `per_page` VMs (at least 1)")
    sort: str = Field(description="host, writes, userspace or share")
    order: str = Field(description="asc or desc")
    hosts: list[HostSummary] = Field(description="every host with a VM of the kind asked")
    vms: list[HostVmOut] = Field(description="this page's VMs, in order")
