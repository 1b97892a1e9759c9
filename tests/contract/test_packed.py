"""The packed column's codec: exact round trips, idle series left out, bad values refused."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.packed import CorruptPacked, pack, unpack

WHERE = "VM 7, tick 2026-12-06T03:00:01+00:00"


@given(
    st.dictionaries(
        st.integers(0, 2**32 - 1),
        st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 9)),
        max_size=60,
    )
)
def test_every_busy_series_round_trips_exactly(series: dict[int, tuple[int, int, int]]) -> None:
    got = unpack(pack(series.items(), 3), 3)
    busy = {i: c for i, c in series.items() if any(c)}
    assert dict(got.items()) == busy
    assert dict(got.firsts()) == {i: c[0] for i, c in busy.items()}
    for i, c in series.items():
        assert got.get(i) == (c if any(c) else None)


def test_idle_series_cost_nothing_and_a_dense_tick_stores_no_indexes() -> None:
    dense = pack(((i, (1 + i % 3,)) for i in range(1000)), 1)
    with_idle = pack(((i, (1 + i % 3 if i < 1000 else 0,)) for i in range(5000)), 1)
    assert with_idle == dense
    assert unpack(dense, 1).dense
    assert unpack(dense, 1).get(999) == (1,) and unpack(dense, 1).get(1000) is None
    assert len(pack([], 1)) == 11  # header and checksum only


def test_busy_tick_of_1000_varied_counts_packs_under_two_bytes_a_series() -> None:
    rng = random.Random(11)
    value = pack(((i, (rng.randrange(0, 40),)) for i in range(1000)), 1)
    assert len(value) < 2000


def test_width_follows_the_largest_count() -> None:
    small = pack([(3, (200,)), (9, (1,))], 1)
    large = pack([(3, (2**40,)), (9, (1,))], 1)
    assert len(large) > len(small)
    assert unpack(large, 1).get(3) == (2**40,)


def test_bad_input_to_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly 3 counts"):
        pack([(1, (1, 2))], 3)
    with pytest.raises(ValueError, match="never negative"):
        pack([(1, (-1,))], 1)
    with pytest.raises(ValueError, match="64 bits"):
        pack([(1, (2**64,))], 1)


@pytest.mark.parametrize("cut", [1, 4, 12, 30])
def test_a_truncated_value_is_refused_naming_where(cut: int) -> None:
    value = pack(((i, (i * 7 % 50 + 1,)) for i in range(0, 400, 3)), 1)
    with pytest.raises(CorruptPacked, match="VM 7, tick 2026-12-06T03:00:01"):
        unpack(value[:-cut], 1, WHERE)


def test_a_flipped_bit_anywhere_is_refused() -> None:
    value = pack(((i, (i % 5 + 1, i % 2, 0)) for i in range(50)), 3)
    for pos in range(len(value)):
        broken = bytearray(value)
        broken[pos] ^= 0x10
        with pytest.raises(CorruptPacked, match="unreadable"):
            unpack(bytes(broken), 3, WHERE)


def test_a_value_with_a_valid_checksum_but_a_wrong_shape_is_refused() -> None:
    value = pack([(1, (5,)), (4, (6,))], 1)
    body = value[:-5]  # one count byte short, then a fresh checksum
    forged = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(CorruptPacked, match="expected"):
        unpack(forged, 1, WHERE)
    with pytest.raises(CorruptPacked, match="3 were expected"):
        unpack(value, 3, WHERE)
