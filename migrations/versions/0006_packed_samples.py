"""packed sample store: one row per (VM, feed, tick), a series dictionary, packed rollups

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:00:00

Issue 11. The six per-series sample tables (signal/exit/observed samples and rollups) become
`samples` and `rollups` (every busy series of a VM feed in one packed value, packing version 1
of contract/packed.py) and `series` (which registration or address each packed index stands
for). Upgrade moves every row, downgrade moves them back; neither loses a count. What the packed
layout does not keep: samples of zero (idle series cost nothing, so a downgrade restores the
non-zero rows), and per-series intervals (a tick has one interval: the largest of its rows is
kept, they are equal when the worker wrote them).

The migration carries what it needs as it was at this revision (the feed numbers, version 1 of
the packed codec, plain column types): the live contract may change, this history may not.
"""

import enum
import struct
import sys
import zlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# contract.models.SampleTime's storage (integer microseconds on SQLite) and U64's (the u64's bit
# pattern in a signed BIGINT): rows are moved as stored, so no conversion is needed here.
TIME = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
U64 = sa.BigInteger()
BATCH = 1000
KEY = ("space", "addr", "len")


class Feed(enum.IntEnum):
    """The feeds of this revision (contract.models.Feed's first three)."""

    SIGNALS = 1
    EXITS = 2
    OBSERVED = 3

    @property
    def fields(self) -> int:
        """Counts per series in a packed value."""
        return 3 if self is Feed.OBSERVED else 1

    @property
    def by_registration(self) -> bool:
        """Series keyed by ioeventfd_id (else by space, addr, len)."""
        return self is Feed.SIGNALS


# Packing version 1, frozen (contract/packed.py describes the layout): version u8, flags u8,
# fields u8, n u32, blocks (index gaps unless dense, then the count byte planes; each a varint
# length << 1 | deflated and its bytes), crc32 u32.
_HEAD = struct.Struct("<BBBI")
_CRC = struct.Struct("<I")
_TYPECODES = ("B", "H", "I", "Q")
_SIZES = (1, 2, 4, 8)
_SWAP = sys.byteorder != "little"


def _width(largest: int) -> int:
    return next(code for code, size in enumerate(_SIZES) if largest < 1 << (8 * size))


def _raw(typecode: str, values: Iterable[int]) -> bytes:
    arr = array(typecode, values)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pack(series: list[tuple[int, tuple[int, ...]]], fields: int) -> bytes:
    """Version 1 of (index, counts) pairs, all-zero series left out."""
    busy = sorted((i, c) for i, c in series if any(c))
    n, idx = len(busy), [i for i, _ in busy]
    counts = [x for _, c in busy for x in c]
    dense = not idx or idx[-1] == n - 1
    gaps = [] if dense else [b - a for a, b in zip([0, *idx], idx, strict=False)]
    idx_code = 0 if dense else _width(max(gaps)) + 1
    count_code = _width(max(counts, default=0))
    width = _SIZES[count_code]
    plain = _raw(_TYPECODES[count_code], counts)
    blocks = [] if dense else [_raw(_TYPECODES[idx_code - 1], gaps)]
    blocks += [plain[j::width] for j in range(width)]
    value = bytearray(_HEAD.pack(1, (idx_code << 1) | (count_code << 3), fields, n))
    for block in blocks:
        stored, deflated = block, 0
        if len(block) > 16:
            squeezed = zlib.compress(block, 6)
            if len(squeezed) <= len(block) * 3 // 4:
                stored, deflated = squeezed, 1
        value += _varint(len(stored) << 1 | deflated) + stored
    return bytes(value + _CRC.pack(zlib.crc32(value)))


def _array(typecode: str, data: bytes) -> array:
    arr = array(typecode)
    arr.frombytes(data)
    if _SWAP:
        arr.byteswap()
    return arr


def unpack(value: bytes, fields: int, where: str) -> dict[int, tuple[int, ...]]:
    """A version 1 value's {index: counts}; refuses a corrupt one rather than move wrong counts."""
    value, end = bytes(value), len(value) - _CRC.size
    if end < _HEAD.size or zlib.crc32(value[:end]) != _CRC.unpack_from(value, end)[0]:
        raise ValueError(f"samples of {where} are unreadable: truncated or corrupt")
    version, flags, stored_fields, n = _HEAD.unpack_from(value)
    if (version, stored_fields) != (1, fields):
        raise ValueError(f"samples of {where}: version {version}, {stored_fields} fields")
    idx_code, count_code = (flags >> 1) & 3, (flags >> 3) & 3
    width = _SIZES[count_code]
    pos, blocks = _HEAD.size, []
    for _ in range((idx_code != 0) + width):
        head = shift = 0
        while True:
            byte = value[pos]
            pos += 1
            head |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        block = value[pos : pos + (head >> 1)]
        pos += head >> 1
        blocks.append(zlib.decompress(block) if head & 1 else block)
    planes = blocks[-width:]
    joined = bytearray(n * fields * width)
    for j, plane in enumerate(planes):
        joined[j::width] = plane
    counts = _array(_TYPECODES[count_code], bytes(joined))
    idx = range(n) if idx_code == 0 else accumulate(_array(_TYPECODES[idx_code - 1], blocks[0]))
    return {i: tuple(counts[p * fields : p * fields + fields]) for p, i in enumerate(idx)}


# Old table, its time column, its count columns, and the feed it becomes.
OLD = [
    ("signal_samples", "taken_at", ("signals",), Feed.SIGNALS, "samples"),
    ("exit_samples", "taken_at", ("exits",), Feed.EXITS, "samples"),
    ("observed_samples", "taken_at", ("writes", "userspace", "reads"), Feed.OBSERVED, "samples"),
    ("signal_rollups", "minute_at", ("signals",), Feed.SIGNALS, "rollups"),
    ("exit_rollups", "minute_at", ("exits",), Feed.EXITS, "rollups"),
    ("observed_rollups", "minute_at", ("writes", "userspace", "reads"), Feed.OBSERVED, "rollups"),
]


def _packed_tables() -> None:
    op.create_table(
        "series",
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("ioeventfd_id", sa.Integer(), nullable=True),
        sa.Column("space", sa.String(length=8), nullable=True),
        sa.Column("addr", U64, nullable=True),
        sa.Column("len", sa.Integer(), nullable=True),
        sa.Column("rolled_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rolled_second", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_series_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("vm_id", "feed", "idx", name=op.f("pk_series")),
        sqlite_with_rowid=False,
    )
    for name, at, interval in (
        ("samples", "taken_at", sa.Integer()),
        ("rollups", "minute_at", sa.BigInteger()),
    ):
        op.create_table(
            name,
            sa.Column("vm_id", sa.Integer(), nullable=False),
            sa.Column("feed", sa.SmallInteger(), nullable=False),
            sa.Column(at, TIME, nullable=False),
            sa.Column("interval_us", interval, nullable=False),
            sa.Column("counts", sa.LargeBinary(), nullable=False),
            sa.ForeignKeyConstraint(
                ["vm_id"], ["vms.id"], name=op.f(f"fk_{name}_vm_id_vms"), ondelete="CASCADE"
            ),
            # a rowid table on SQLite: its pages keep ~4 KB of a row, WITHOUT ROWID's ~1 KB
            sa.PrimaryKeyConstraint("vm_id", "feed", at, name=op.f(f"pk_{name}")),
        )


def _old_tables() -> None:
    """The tables of 0001 and 0004, as they were."""
    for name, at, counts, feed, _ in OLD:
        registration = feed is Feed.SIGNALS
        key = ["ioeventfd_id"] if registration else ["vm_id", *KEY]
        pk = [at, *key] if name.endswith("samples") else [*key, at]
        columns = [sa.Column(at, TIME, nullable=False)]
        columns += [sa.Column(c, sa.BigInteger(), nullable=False) for c in counts]
        if registration:
            columns.append(sa.Column("ioeventfd_id", sa.Integer(), nullable=False))
            fk = sa.ForeignKeyConstraint(
                ["ioeventfd_id"],
                ["ioeventfds.id"],
                name=op.f(f"fk_{name}_ioeventfd_id_ioeventfds"),
                ondelete="CASCADE",
            )
        else:
            columns += [
                sa.Column("addr", U64, nullable=False),
                sa.Column("vm_id", sa.Integer(), nullable=False),
                sa.Column("len", sa.Integer(), nullable=False),
                sa.Column("space", sa.String(length=8), nullable=False),
            ]
            fk = sa.ForeignKeyConstraint(
                ["vm_id"], ["vms.id"], name=op.f(f"fk_{name}_vm_id_vms"), ondelete="CASCADE"
            )
        columns.append(sa.Column("interval_s", sa.REAL(), nullable=False))
        op.create_table(
            name,
            *columns,
            fk,
            sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )


def _table(name: str, *columns: str) -> sa.TableClause:
    types = {"taken_at": TIME, "minute_at": TIME, "addr": U64, "counts": sa.LargeBinary()}
    return sa.table(name, *(sa.column(c, types.get(c)) for c in columns))


def _old_rows(conn: Any, name: str, at: str, counts: tuple[str, ...], feed: Feed) -> Iterator:
    """(vm_id, key, time, counts, interval_s) of an old table, by VM and time."""
    if feed is Feed.SIGNALS:
        t = _table(name, at, "ioeventfd_id", "interval_s", *counts)
        regs = _table("ioeventfds", "id", "vm_id")
        query = (
            sa.select(regs.c.vm_id, t.c.ioeventfd_id, t.c[at], t.c.interval_s)
            .add_columns(*(t.c[c] for c in counts))
            .join_from(t, regs, regs.c.id == t.c.ioeventfd_id)
            .order_by(regs.c.vm_id, t.c[at])
        )
    else:
        t = _table(name, at, "vm_id", *KEY, "interval_s", *counts)
        query = (
            sa.select(t.c.vm_id, t.c.space, t.c.addr, t.c.len, t.c[at], t.c.interval_s)
            .add_columns(*(t.c[c] for c in counts))
            .order_by(t.c.vm_id, t.c[at])
        )
    width = 1 if feed is Feed.SIGNALS else 3
    for row in conn.execute(query, execution_options={"yield_per": 10_000}):
        key = row[1] if width == 1 else tuple(row[1:4])
        yield row[0], key, row[1 + width], tuple(row[3 + width :]), row[2 + width]


def _ticks(rows: Iterator) -> Iterator[tuple[int, Any, float, list[tuple[Any, tuple]]]]:
    """Old rows grouped by (VM, time): (vm_id, time, largest interval_s, [(key, counts)])."""
    tick: tuple[int, Any] | None = None
    busy: list[tuple[Any, tuple]] = []
    interval = 0.0
    for vm_id, key, when, values, interval_s in rows:
        if tick != (vm_id, when):
            if tick is not None:
                yield (*tick, interval, busy)
            tick, busy, interval = (vm_id, when), [], 0.0
        busy.append((key, values))
        interval = max(interval, float(interval_s))
    if tick is not None:
        yield (*tick, interval, busy)


def upgrade() -> None:
    _packed_tables()
    conn = op.get_bind()
    index: dict[tuple[int, Feed], dict[Any, int]] = defaultdict(dict)
    totals: dict[tuple[int, Feed, int], int] = defaultdict(int)
    seconds: dict[tuple[int, Feed, int], int] = defaultdict(int)  # second counts' sums
    for name, at, counts, feed, target in OLD:
        out = _table(target, "vm_id", "feed", at, "interval_us", "counts")
        rows: list[dict[str, Any]] = []
        for vm_id, when, interval, busy in _ticks(_old_rows(conn, name, at, counts, feed)):
            series = index[(vm_id, feed)]
            packed = []
            for key, values in busy:
                idx = series.setdefault(key, len(series))
                packed.append((idx, values))
                if target == "rollups":
                    totals[(vm_id, feed, idx)] += values[0]
                    seconds[(vm_id, feed, idx)] += values[1] if len(values) > 1 else 0
            rows.append(
                {"vm_id": vm_id, "feed": int(feed), at: when}
                | {"interval_us": round(interval * 1e6), "counts": pack(packed, feed.fields)}
            )
            if len(rows) >= BATCH:
                conn.execute(sa.insert(out), rows)
                rows.clear()
        if rows:
            conn.execute(sa.insert(out), rows)
    columns = ("vm_id", "feed", "idx", "rolled_total", "rolled_second", "ioeventfd_id", *KEY)
    series_rows = [
        dict.fromkeys(columns)
        | {
            "vm_id": vm_id,
            "feed": int(feed),
            "idx": idx,
            "rolled_total": totals[(vm_id, feed, idx)],
            "rolled_second": seconds[(vm_id, feed, idx)],
        }
        | ({"ioeventfd_id": key} if feed.by_registration else dict(zip(KEY, key, strict=True)))
        for (vm_id, feed), keys in index.items()
        for key, idx in keys.items()
    ]
    if series_rows:
        conn.execute(sa.insert(_table("series", *columns)), series_rows)
    for name, *_ in OLD:
        op.drop_table(name)


def downgrade() -> None:
    _old_tables()
    conn = op.get_bind()
    series = _table("series", "vm_id", "feed", "idx", "ioeventfd_id", *KEY)
    keys = {
        (r.vm_id, r.feed, r.idx): r.ioeventfd_id
        if Feed(r.feed).by_registration
        else (r.space, r.addr, r.len)
        for r in conn.execute(sa.select(series))
    }
    live_regs = set(conn.execute(sa.text("SELECT id FROM ioeventfds")).scalars())
    for name, at, counts, feed, source in OLD:
        src = _table(source, "vm_id", "feed", at, "interval_us", "counts")
        query = sa.select(src).where(src.c.feed == int(feed)).order_by(src.c.vm_id, src.c[at])
        out = _table(name, at, *counts, "interval_s", "ioeventfd_id", "vm_id", *KEY)
        rows: list[dict[str, Any]] = []
        for r in conn.execute(query, execution_options={"yield_per": 1000}):
            packed = unpack(r.counts, feed.fields, f"VM {r.vm_id}, {at} {r[2]}")
            for idx, values in packed.items():
                key = keys[(r.vm_id, int(feed), idx)]
                row = {at: r[2], "interval_s": r.interval_us / 1e6}
                row |= dict(zip(counts, values, strict=True))
                if feed is Feed.SIGNALS:
                    if key not in live_regs:
                        continue
                    row["ioeventfd_id"] = key
                else:
                    row |= {"vm_id": r.vm_id} | dict(zip(KEY, key, strict=True))
                rows.append(row)
            if len(rows) >= BATCH:
                conn.execute(sa.insert(out), rows)
                rows.clear()
        if rows:
            conn.execute(sa.insert(out), rows)
    for name in ("rollups", "samples", "series"):
        op.drop_table(name)
