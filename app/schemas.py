"""Request and response bodies of the REST API (the shapes the dashboard relies on)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from app.schemas_observed import Diagnosis
from contract.benchpaths import BENCH_PATHS
from contract.models import BenchState, RegState, VmKind, VmState
from contract.rules import (
    MAX_ANSWERED_RATE_HZ,
    MAX_DOORBELL_RATE_HZ,
    MAX_DOORBELLS,
    MAX_TOTAL_RATE_HZ,
    MIN_DOORBELL_RATE_HZ,
    doorbell_problem,
    parse_u64,
    rate_problem,
    registration_problem,
    workload_problem,
)


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it at the door instead of failing in the database.
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]
SpaceName = Literal["pio", "mmio"]
U64In = int | str  # an integer, or a "0x..." string


class ErrorOut(BaseModel):
    """Every error: a sentence naming the rule, and the kernel's errno name where one applies."""

    detail: str
    errno: str | None = None


class VmOut(BaseModel):
    """A VM and its worker, as the worker last reported them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    host: str
    kernel: str
    capabilities: dict[str, Any]
    mem_size: int | None = Field(
        None, description="the guest's RAM in bytes, as the worker reports it (owned VMs)"
    )
    state: VmState = Field(description="as the worker last reported it")
    error: str | None
    pid: int | None
    workload_version: int = Field(description="newest workload version the worker applied")
    started_at: datetime | None
    heartbeat_at: datetime | None
    heartbeat_age_s: float | None = None
    alive: bool = False
    cpu_model: str = ""
    kvm_module: str = Field("", description="kvm_intel, kvm_amd, kvm_pvm, ...")
    kvm_nested: bool | None = Field(None, description="this KVM runs inside a VM")
    kind: VmKind = Field(
        VmKind.OWNED,
        description="owned: an iosignal worker's VM (steerable); observed: any VMM the observer "
        "watches (read-only)",
    )
    comm: str | None = Field(None, description="the VMM's command name (observed VMs)")
    cmdline: str | None = Field(None, description="the head of its command line")
    vcpus: int | None = None
    vcpu_tids: list[int] | None = None
    kvm_stats: dict[str, Any] | None = Field(
        None, description="KVM's own totals (exits, io_exits, mmio_exits, halt_exits) from debugfs"
    )
    ended_at: datetime | None = Field(None, description="when the observed process ended")
    observer_seen_at: datetime | None = Field(
        None, description="the host observer's newest tick that saw this VM (any kind)"
    )
    observer_age_s: float | None = Field(None, description="seconds since observer_seen_at")


class IoeventfdIn(BaseModel):
    """A registration request; `addr`/`datamatch` take integers or "0x..." strings."""

    model_config = ConfigDict(extra="forbid")

    space: SpaceName
    addr: U64In = Field(examples=[0x6000, "0xd0000000"])
    len: int = Field(description="access width in bytes: 0 (any), 1, 2, 4 or 8", examples=[4])
    datamatch: U64In | None = Field(None, description="only writes of this value; null = any")
    label: Text | None = Field(None, max_length=128)

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: U64In) -> int:
        return parse_u64(value, "addr")

    @field_validator("datamatch")
    @classmethod
    def _datamatch(cls, value: U64In | None) -> int | None:
        return None if value is None else parse_u64(value, "datamatch")

    @model_validator(mode="after")
    def _kernel_rules(self) -> IoeventfdIn:
        problem = registration_problem(self.space, int(self.addr), self.len, self.datamatch_int)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def datamatch_int(self) -> int | None:
        """datamatch after parsing (the validator has turned strings into ints)."""
        return None if self.datamatch is None else int(self.datamatch)


class IoeventfdOut(BaseModel):
    """A registration: what was asked, and the kernel's verdict once the worker applied it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: Literal["iosignal"] = "iosignal"
    vm_id: int
    space: str
    addr: int
    len: int
    datamatch: int | None
    label: str | None
    state: RegState
    errno: str | None = Field(description="the kernel's errno name when state is failed")
    error: str | None
    signals_total: int
    created_at: datetime
    updated_at: datetime
    applied_at: datetime | None
    removed_at: datetime | None


class RatePoint(BaseModel):
    """Signals counted in one step starting at `t`, and their rate."""

    t: datetime
    signals: int
    rate_hz: float


class RatesOut(BaseModel):
    """A registration's signal rate over time; `tier` says which table answered."""

    id: int
    step_s: float
    tier: Literal["raw", "minute"]
    points: list[RatePoint]


class ExitRow(BaseModel):
    """Userspace exits of writes to one address in the window, with the average rate, and what
    the observer counted there: for an observed VM `exits` and `rate_hz` are its userspace exits,
    for an owned VM the worker's own exit counter."""

    space: str
    addr: int
    len: int
    exits: int
    rate_hz: float
    registered: bool | None = Field(
        description="an active registration covers this space/addr/len (for an observed VM one "
        "the observer saw the VMM make; null where no observer ever watched its host)"
    )
    # What `iosignal observe` counted at the address (null where no observer watched it).
    writes: int | None = Field(None, description="guest writes the observer counted")
    userspace: int | None = Field(None, description="of them, exits to userspace")
    in_kernel: int | None = Field(None, description="writes - userspace: an ioeventfd took them")
    writes_hz: float | None = None
    userspace_hz: float | None = None
    in_kernel_hz: float | None = None
    in_kernel_share: float | None = Field(None, description="in_kernel / writes, 0..1")
    read_exits: int | None = Field(None, description="reads there that exited to the VMM")
    read_exits_hz: float | None = None
    diagnosis: Diagnosis | None = Field(
        None, description="why its writes still exit, or what an ioeventfd would save"
    )


class DoorbellIn(BaseModel):
    """One doorbell the guest rings: a write of `value` to `addr`, `rate_hz` times a second."""

    model_config = ConfigDict(extra="forbid")

    space: SpaceName
    addr: U64In
    len: int = Field(description="write width: 1, 2, 4 or 8 (PIO at most 4)")
    value: U64In = 0
    # Bounded by contract.rules.rate_problem in `_rules`, so the 422 says the rule's sentence;
    # the schema only documents the bounds.
    rate_hz: float = Field(
        description=f"writes a second; {MIN_DOORBELL_RATE_HZ:g} is silent (kept, never rung)",
        json_schema_extra={"minimum": MIN_DOORBELL_RATE_HZ, "maximum": MAX_DOORBELL_RATE_HZ},
    )
    answered: StrictBool = Field(
        False,
        description="a device answers each write with an interrupt the guest waits for "
        f"(rate_hz at most {MAX_ANSWERED_RATE_HZ:g})",
    )

    @field_validator("addr", "value")
    @classmethod
    def _u64(cls, value: U64In, info: Any) -> int:
        return parse_u64(value, info.field_name)

    @model_validator(mode="after")
    def _rules(self) -> DoorbellIn:
        problem = doorbell_problem(
            self.space, int(self.addr), self.len, int(self.value)
        ) or rate_problem(self.rate_hz, self.answered)
        if problem:
            raise ValueError(problem)
        return self


class WorkloadIn(BaseModel):
    """The doorbells a VM's guest should ring (replaces the previous set)."""

    model_config = ConfigDict(extra="forbid")

    doorbells: list[DoorbellIn] = Field(max_length=MAX_DOORBELLS)

    @model_validator(mode="after")
    def _total_rate(self) -> WorkloadIn:
        problem = workload_problem([d.rate_hz for d in self.doorbells])
        if problem:
            raise ValueError(problem)
        return self


class WorkloadLimits(BaseModel):
    """The rate limits a workload must respect."""

    max_doorbells: int = MAX_DOORBELLS
    min_doorbell_rate_hz: float = MIN_DOORBELL_RATE_HZ
    max_doorbell_rate_hz: float = MAX_DOORBELL_RATE_HZ
    max_total_rate_hz: float = MAX_TOTAL_RATE_HZ
    max_answered_rate_hz: float = MAX_ANSWERED_RATE_HZ


class WorkloadOut(BaseModel):
    """The newest workload version and whether the worker has applied it."""

    vm_id: int
    version: int
    doorbells: list[dict[str, Any]]
    applied: bool = Field(description="the worker has handled this version")
    error: str | None = Field(
        None, description="once handled: the worker's error if it refused the version"
    )
    created_at: datetime | None
    demo: bool = Field(False, description="the demo workload (POST /api/demo) set it")
    limits: WorkloadLimits = WorkloadLimits()


class BenchmarkIn(BaseModel):
    """A benchmark request: `writes` per pass, `repeat` passes per path."""

    model_config = ConfigDict(extra="forbid")

    vm_id: int | None = Field(None, ge=1, le=2**31 - 1)
    writes: int = Field(200_000, ge=1, le=10_000_000)
    repeat: int = Field(5, ge=1, le=100)
    paths: list[Text] | None = Field(
        None, max_length=len(BENCH_PATHS), description="default: every path"
    )


class BenchmarkCreated(BaseModel):
    """The id of a queued benchmark."""

    id: int


class Regression(BaseModel):
    """A path's writes/s fell more than the asked share below the previous done run of the
    same path on the same host."""

    previous_run_id: int
    previous_iops: float
    drop_share: float = Field(description="(previous - this) / previous")


class BenchmarkResultOut(BaseModel):
    """One path's figures (the shape of `iosignal bench --json`)."""

    model_config = ConfigDict(from_attributes=True)

    path: str
    writes: int
    iops: float
    rtt_us: float
    rtt_us_min: float
    rtt_us_max: float
    guest_rtt_us: float | None
    rtt_us_p99: float | None = None  # round-trip paths only
    paced_cpu_ns: float | None = None  # one-way paths: vCPU CPU time per write, paced passes
    regression: Regression | None = None


class BenchmarkOut(BaseModel):
    """A benchmark run: its state, progress 0..1, and its results."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    vm_id: int | None
    state: BenchState
    progress: float
    writes: int
    repeat: int
    paths: list[str]
    host: str
    kernel: str
    cpu_model: str = ""
    kvm_module: str = ""
    kvm_nested: bool | None = None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    results: list[BenchmarkResultOut]


class TrendPoint(BaseModel):
    """One done run of a path: when it finished (ms since the epoch) and its figures."""

    run_id: int
    t: int
    iops: float
    rtt_us: float
    regression: Regression | None = None


class Trend(BaseModel):
    """A path's runs on one host, kernel and KVM module, oldest first."""

    path: str
    host: str
    kernel: str
    kvm_module: str
    kvm_nested: bool | None = Field(description="as of the newest run")
    cpu_model: str = Field(description="as of the newest run")
    points: list[TrendPoint]


class AuthOut(BaseModel):
    """The caller's role, and whether tokens are required at all."""

    tokens_required: bool
    role: Literal["viewer", "editor"] | None
