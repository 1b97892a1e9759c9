"""The shared schema: the contract between app and worker (see README, Architecture).

The app writes desired state (registrations, workloads, benchmark requests); the worker writes
actual state (kernel verdicts, heartbeats, samples, benchmark results).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    REAL,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from contract.guest import DEFAULT_MEM_SIZE
from contract.rules import LIVE_STATES
from contract.timeparse import EPOCH, epoch_us

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_U64_SIGN = 1 << 63


def utcnow() -> datetime:
    """Timezone-aware now in UTC; every `_at` column holds UTC."""
    return datetime.now(UTC)


class U64(TypeDecorator[int]):
    """An unsigned 64-bit integer kept in a signed BIGINT (two's complement).

    Guest addresses and 8-byte datamatch values use the full u64 range, which neither SQLite's
    INTEGER nor PostgreSQL's BIGINT holds unsigned; the bit pattern is kept, so equality and
    indexes work, ordering above 2**63 does not (no query orders by these).
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return value - (1 << 64) if value >= _U64_SIGN else value

    def process_result_value(self, value: int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return value + (1 << 64) if value < 0 else value


class UTCDateTime(TypeDecorator[datetime]):
    """DateTime that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class SampleTime(TypeDecorator[datetime]):
    """A UTC instant stored compactly: `timestamptz` on PostgreSQL, integer microseconds on SQLite.

    Sample tables hold ~86 M rows a day at 1,000 registrations; SQLite's default text timestamp
    costs 26 bytes, an integer 8. Python always sees an aware UTC `datetime`, and comparisons in
    queries (`taken_at >= since`) bind through this type, so callers never see the integer.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if dialect.name == "sqlite":
            return epoch_us(value)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return EPOCH + timedelta(microseconds=value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


# Float32 on PostgreSQL (4 bytes, and it packs with the int key without padding); an interval's
# float32 precision (~0.1 us at 1 s) is far below the jitter of the tick that measured it.
Seconds32: REAL[float] = REAL()


class Base(DeclarativeBase):
    """Declarative base with predictable constraint names for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Space(enum.StrEnum):
    """Which bus a doorbell is on."""

    PIO = "pio"
    MMIO = "mmio"


class RegState(enum.StrEnum):
    """Lifecycle of a registration: the app creates `pending` and asks for `removing`."""

    PENDING = "pending"  # desired, not yet applied by the worker
    ACTIVE = "active"  # assigned in the kernel
    FAILED = "failed"  # the kernel (or the worker's stricter check) refused it: see errno
    REMOVING = "removing"  # deletion asked, worker has not deassigned yet
    REMOVED = "removed"  # deassigned; history keeps pointing at it

    @classmethod
    def live(cls) -> tuple[RegState, ...]:
        """States the kernel holds or is about to hold: what a new one must not collide with."""
        return tuple(cls(state) for state in LIVE_STATES)


class VmState(enum.StrEnum):
    """Lifecycle of a VM as its worker reports it with each heartbeat."""

    STARTING = "starting"  # row made, VM not yet built
    RUNNING = "running"  # vCPU running, heartbeats coming
    STOPPED = "stopped"  # the worker stopped it cleanly
    FAILED = "failed"  # the VM or its guest failed: see error


class VmKind(enum.StrEnum):
    """Who runs a VM: an iosignal worker (owned, steerable) or any VMM the observer sees."""

    OWNED = "owned"
    OBSERVED = "observed"  # read-only: no registrations, no workloads


class BenchState(enum.StrEnum):
    """Lifecycle of a benchmark run: the app queues it, a worker claims and runs it."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class WorkerHealth(TypedDict):
    """The worker's own counters since it claimed its VM row, stored with each heartbeat."""

    missed_ticks: int  # sampling ticks skipped because a collect overran its interval
    dropped_samples: int  # samples lost: buffer full through an outage, or refused by the DB
    lock_errors: int  # sample writes that met a locked SQLite database


class Vm(Base):
    """A VM: one worker and the VM it owns, or a VMM process the observer saw (`kind`).

    An observed VM is keyed by (host, pid, started_at = the process start), so a reused pid is a
    new VM; its `name` is made from those. The worker's own VM keeps its owned row: the observer
    writes that VM's samples there, found by (host, pid).
    """

    __tablename__ = "vms"
    __table_args__ = (
        Index(
            "uq_vms_observed_process",
            "host",
            "pid",
            "started_at",
            unique=True,
            sqlite_where=text("kind = 'observed'"),
            postgresql_where=text("kind = 'observed'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    kernel: Mapped[str] = mapped_column(String(255), default="")
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The guest's RAM size as the worker reports it (NULL for observed VMs, or before a worker
    # said): the app checks MMIO doorbells and registrations against it (migration 0011).
    mem_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    state: Mapped[str] = mapped_column(String(16), default=VmState.STARTING.value)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    workload_version: Mapped[int] = mapped_column(Integer, default=0)  # applied by the worker
    # Raw samples before this instant are rolled up into the per-minute tier (worker-owned).
    rolled_up_until: Mapped[datetime | None] = mapped_column(SampleTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # WorkerHealth, one column each: typed counters /metrics reads by name (migration 0002).
    missed_ticks: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    dropped_samples: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lock_errors: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The host's flavour (worker/hostinfo.py): benchmark trends group and compare by it.
    cpu_model: Mapped[str] = mapped_column(String(255), default="", server_default="")
    kvm_module: Mapped[str] = mapped_column(String(32), default="", server_default="")
    kvm_nested: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(
        String(16), default=VmKind.OWNED.value, server_default=VmKind.OWNED.value
    )
    comm: Mapped[str | None] = mapped_column(String(64), default=None)  # the VMM's command name
    cmdline: Mapped[str | None] = mapped_column(Text, default=None)  # its command line's head
    vcpus: Mapped[int | None] = mapped_column(Integer, default=None)
    vcpu_tids: Mapped[list[int] | None] = mapped_column(JSON, default=None)  # vCPU thread ids
    # KVM's own totals for the VM (exits, io_exits, mmio_exits, halt_exits) where debugfs
    # answers, with their `taken_at`; NULL on kernels that refuse them.
    kvm_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # process gone
    # Observed samples before this instant are rolled up (observer-owned; rolled_up_until is
    # the worker's, for its own sample tables of the same row).
    observed_rolled_up_until: Mapped[datetime | None] = mapped_column(SampleTime, default=None)
    # The observer's newest tick that saw this VM's process, committed with that tick's samples:
    # every observed sample taken by then is in the database (owned rows too; observer-owned).
    observer_seen_at: Mapped[datetime | None] = mapped_column(SampleTime, default=None)

    ioeventfds: Mapped[list[Ioeventfd]] = relationship(back_populates="vm")

    @property
    def guest_mem_size(self) -> int:
        """The RAM the rules check a guest address against: the reported size, else the default
        a worker builds (the worker checks again against its real VM)."""
        return self.mem_size or DEFAULT_MEM_SIZE


class Ioeventfd(Base):
    """A desired registration and its actual state in the kernel."""

    __tablename__ = "ioeventfds"
    __table_args__ = (
        Index("ix_ioeventfds_vm_state", "vm_id", "state"),
        # The collision check reads one address's registrations, whatever the VM holds.
        Index("ix_ioeventfds_vm_addr", "vm_id", "space", "addr", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    space: Mapped[str] = mapped_column(String(8))
    addr: Mapped[int] = mapped_column(U64)
    len: Mapped[int] = mapped_column(Integer)
    datamatch: Mapped[int | None] = mapped_column(U64, default=None)  # NULL = wildcard
    label: Mapped[str | None] = mapped_column(String(128), default=None)
    state: Mapped[str] = mapped_column(String(16), default=RegState.PENDING.value)
    errno: Mapped[str | None] = mapped_column(String(32), default=None)  # e.g. "EEXIST"
    error: Mapped[str | None] = mapped_column(Text, default=None)
    signals_total: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    vm: Mapped[Vm] = relationship(back_populates="ioeventfds")


class Workload(Base):
    """A version of the doorbells a VM's guest rings; the newest version is the desired one."""

    __tablename__ = "workloads"
    __table_args__ = (Index("ix_workloads_vm_version", "vm_id", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # [{"space": "pio", "addr": int, "len": int, "value": int, "rate_hz": float}, ...]
    # (+ "answered": true for a doorbell a device answers with an interrupt, issue 13)
    doorbells: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Observer(Base):
    """One `iosignal observe` process: what it saw of the VMMs' registrations begins at its
    `started_at` (calls made before it are unknown), and `seen_at` is its newest write."""

    __tablename__ = "observers"
    __table_args__ = (Index("ix_observers_host_started", "host", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ObservedRegistration(Base):
    """A KVM_IOEVENTFD or KVM_IRQFD call some VMM made, as the observer saw it (issue 18).

    An assign the kernel accepted is live until a deassign matches it (`deassigned_at`); a
    deassign that matched no row (assigned before the observer started) is a row of its own
    with `deassign` true and no `assigned_at`; a refused call keeps its `errno` and never
    counts as registered.
    """

    __tablename__ = "observed_registrations"
    __table_args__ = (Index("ix_observed_registrations_vm_addr", "vm_id", "kind", "space", "addr"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # ioeventfd | irqfd
    deassign: Mapped[bool] = mapped_column(Boolean, default=False)  # the call was a deassign
    space: Mapped[str | None] = mapped_column(String(8), default=None)
    addr: Mapped[int | None] = mapped_column(U64, default=None)
    len: Mapped[int | None] = mapped_column(Integer, default=None)
    datamatch: Mapped[int | None] = mapped_column(U64, default=None)  # NULL = wildcard
    eventfd: Mapped[int] = mapped_column(Integer)
    gsi: Mapped[int | None] = mapped_column(Integer, default=None)  # irqfd only
    flags: Mapped[int] = mapped_column(BigInteger, default=0)
    called_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deassigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    errno: Mapped[str | None] = mapped_column(String(32), default=None)  # refused: e.g. EEXIST


class ObservedExitValue(Base):
    """A value the guest wrote to an address in writes that exited to userspace: how often since
    first seen, and when last. The observer keeps the few most recent values per address."""

    __tablename__ = "observed_exit_values"
    __table_args__ = (PrimaryKeyConstraint("vm_id", "space", "addr", "len", "value"),)

    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    space: Mapped[str] = mapped_column(String(8))
    addr: Mapped[int] = mapped_column(U64)
    len: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(U64)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DoorbellLatency(Base):
    """One in-kernel doorbell of a VM in one minute (observer/latency.py): the consumer its
    kicks woke, what was counted, and each stage's histogram {stage: {slot: count}} with the
    slots of contract.latency. Bucket counts add, so a minute's row adds every tick of it."""

    __tablename__ = "doorbell_latency"
    __table_args__ = (PrimaryKeyConstraint("vm_id", "space", "addr", "len", "minute_at"),)

    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    space: Mapped[str] = mapped_column(String(8))
    addr: Mapped[int] = mapped_column(U64)
    len: Mapped[int] = mapped_column(Integer)
    minute_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the minute's start
    consumer_tid: Mapped[int] = mapped_column(Integer)
    consumer_comm: Mapped[str] = mapped_column(String(16))
    consumer_process: Mapped[str] = mapped_column(String(16))
    kicks: Mapped[int] = mapped_column(BigInteger, default=0)  # writes that stayed in the kernel
    wakes: Mapped[int] = mapped_column(BigInteger, default=0)  # kicks that woke the consumer
    answered: Mapped[int] = mapped_column(BigInteger, default=0)  # interrupts paired with a kick
    coalesced: Mapped[int] = mapped_column(BigInteger, default=0)  # kicks one interrupt shared
    stale: Mapped[int] = mapped_column(BigInteger, default=0)  # kicks no interrupt answered
    vector: Mapped[int | None] = mapped_column(Integer, default=None)
    hists: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)


class Feed(enum.IntEnum):
    """What a packed sample counts; the series of a feed are keyed by `SERIES_KEY`."""

    SIGNALS = 1  # worker: eventfd signals per registration (ioeventfd_id)
    EXITS = 2  # worker: userspace exits per (space, addr, len)
    OBSERVED = 3  # observer: writes, userspace exits, reads per (space, addr, len)
    # worker: an answered doorbell's kicks and the device's interrupts per (space, addr, len);
    # the doorbell is a workload's, answered by a device of its own, not a registration
    ANSWERS = 4
    READ_EXITS = 5  # observer: reads that exited to the VMM per (space, addr, len)

    @property
    def fields(self) -> int:
        """Counts per series in a packed value."""
        return {Feed.OBSERVED: 3, Feed.ANSWERS: 2}.get(self, 1)

    @property
    def by_registration(self) -> bool:
        """Series keyed by ioeventfd_id (else by space, addr, len)."""
        return self is Feed.SIGNALS


class Series(Base):
    """The dictionary of the packed column: which registration or address a VM feed's small
    index `idx` stands for. Written once per new series, by the feed's only writer.

    `rolled_total` (and `rolled_second`) is the first (second) count summed over every
    rolled-up minute, kept when old rollups are deleted, so a lifetime counter (/metrics)
    reads this row plus the raw tail.
    """

    __tablename__ = "series"
    __table_args__ = (
        PrimaryKeyConstraint("vm_id", "feed", "idx"),
        Index("ix_series_addr", "addr"),  # the host view's search by address
        {"sqlite_with_rowid": False},
    )

    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    feed: Mapped[int] = mapped_column(SmallInteger)
    idx: Mapped[int] = mapped_column(Integer)
    ioeventfd_id: Mapped[int | None] = mapped_column(Integer, default=None)
    space: Mapped[str | None] = mapped_column(String(8), default=None)
    addr: Mapped[int | None] = mapped_column(U64, default=None)
    len: Mapped[int | None] = mapped_column(Integer, default=None)
    rolled_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # the second count's (observed: userspace exits), for lifetime counters of both
    rolled_second: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Sample(Base):
    """Raw tier: one tick of one VM feed, every busy series' counts in `counts`
    (contract/packed.py; idle series are left out), and the tick's interval.

    One row per (VM, feed, tick) instead of one per series: 1,000 series cost one key and one
    B-tree entry a tick. Keyed VM-first: a VM's ticks are one range of the key, read by time,
    deleted by prefix, and the newest tick is one index step.
    """

    __tablename__ = "samples"
    # A rowid table on SQLite, not WITHOUT ROWID: a busy tick's value is ~1-2 KB, and a WITHOUT
    # ROWID (index) B-tree keeps at most ~1 KB of a row on its page, spilling the rest to an
    # overflow page of its own (measured 4.6 bytes a sample instead of 1.5).
    # ix_samples_feed_taken: every VM's ticks of one feed in a short window (the host view at
    # 5,000 VMs) is one range of it, its sums read from the index alone on PostgreSQL.
    __table_args__ = (
        PrimaryKeyConstraint("vm_id", "feed", "taken_at"),
        Index(
            "ix_samples_feed_taken",
            "feed",
            "taken_at",
            postgresql_include=["vm_id", "interval_us", "sum_first", "sum_second"],
        ),
    )

    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    feed: Mapped[int] = mapped_column(SmallInteger)
    taken_at: Mapped[datetime] = mapped_column(SampleTime)
    interval_us: Mapped[int] = mapped_column(Integer)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    # The tick's first (second) counts summed over its series (observed: writes, userspace
    # exits), so a VM's totals need no decoding; NULL in rows stored before migration 0013.
    sum_first: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sum_second: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Rollup(Base):
    """Per-minute tier: a VM feed's raw ticks of one minute summed per series (same packing),
    with the sum of their intervals; sums equal the raw counts they replace."""

    __tablename__ = "rollups"
    __table_args__ = (
        PrimaryKeyConstraint("vm_id", "feed", "minute_at"),  # rowid: as samples
        Index(
            "ix_rollups_feed_minute",
            "feed",
            "minute_at",
            postgresql_include=["vm_id", "sum_first", "sum_second"],
        ),
    )

    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    feed: Mapped[int] = mapped_column(SmallInteger)
    minute_at: Mapped[datetime] = mapped_column(SampleTime)
    interval_us: Mapped[int] = mapped_column(BigInteger)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    sum_first: Mapped[int | None] = mapped_column(BigInteger, default=None)  # as Sample's
    sum_second: Mapped[int | None] = mapped_column(BigInteger, default=None)


class BenchmarkRun(Base):
    """One benchmark: requested by the app (or the CLI), run by a worker on a scratch VM."""

    __tablename__ = "benchmark_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vms.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default=BenchState.QUEUED.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    writes: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    host: Mapped[str] = mapped_column(String(255), default="")
    kernel: Mapped[str] = mapped_column(String(255), default="")
    cpu_model: Mapped[str] = mapped_column(String(255), default="", server_default="")
    kvm_module: Mapped[str] = mapped_column(String(32), default="", server_default="")
    kvm_nested: Mapped[bool | None] = mapped_column(Boolean, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    results: Mapped[list[BenchmarkResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="BenchmarkResult.id"
    )


class BenchmarkResult(Base):
    """One path's figures in a benchmark run (the shape of `iosignal bench --json`)."""

    __tablename__ = "benchmark_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(32))
    writes: Mapped[int] = mapped_column(Integer)
    iops: Mapped[float] = mapped_column(Float)
    rtt_us: Mapped[float] = mapped_column(Float)
    rtt_us_min: Mapped[float] = mapped_column(Float)
    rtt_us_max: Mapped[float] = mapped_column(Float)
    guest_rtt_us: Mapped[float | None] = mapped_column(Float, default=None)
    # Round-trip rows only: their rtt figures are per request, so a percentile means something.
    rtt_us_p99: Mapped[float | None] = mapped_column(Float, default=None)
    # One-way rows: the vCPU thread's CPU time per write in paced passes (what a doorbell
    # ringing at a rate costs the vCPU, whatever else the host runs); the diagnosis prices
    # exits with it (migration 0010).
    paced_cpu_ns: Mapped[float | None] = mapped_column(Float, default=None)

    run: Mapped[BenchmarkRun] = relationship(back_populates="results")


class Dashboard(Base):
    """A saved, shared dashboard: a name, a stable slug, and its range, refresh and panels."""

    __tablename__ = "dashboards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # {"range": {"since", "until"}, "refresh_s", "panels": [...]}: app/schemas_dash.py checks it
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Note(Base):
    """An annotation a person added: text at a time or over a span, for a VM or global."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    time_end: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    text: Mapped[str] = mapped_column(String(500))
    author: Mapped[str | None] = mapped_column(String(64), default=None)  # the token's name
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerEvent(Base):
    """A worker process claiming its VM (`start`) or leaving it (`stop`, `failed`).

    `vms` keeps only the newest process; this keeps each one, so charts can mark restarts.
    """

    __tablename__ = "worker_events"
    __table_args__ = (Index("ix_worker_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))  # start | stop | failed
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer, default=None)


class Demo(Base):
    """The demo workload while it runs: what it added, so removing it undoes exactly that."""

    __tablename__ = "demos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"))
    ioeventfd_id: Mapped[int | None] = mapped_column(
        ForeignKey("ioeventfds.id", ondelete="SET NULL"), default=None
    )
    workload_version: Mapped[int] = mapped_column(Integer)  # the demo's version
    previous_version: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | editor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
