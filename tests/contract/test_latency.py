"""contract.latency: the slots the BPF programs compute, inverted, and percentiles within them."""

from __future__ import annotations

from contract.latency import add, cumulative, percentile, slot_bounds, slot_of


def test_every_value_lies_in_its_slot_and_slots_are_at_most_an_eighth_wide() -> None:
    for ns in [*range(0, 300), 1000, 53_810, 999_999, 10**9, 2**40 + 3, 2**63 - 1]:
        low, high = slot_bounds(slot_of(ns))
        assert low <= ns < high, ns
        assert high - low <= max(1, low // 8), ns
    # neighbouring slots tile the line: no gap, no overlap
    assert all(slot_bounds(s)[1] == slot_bounds(s + 1)[0] for s in range(0, 480))


def test_percentiles_interpolate_inside_the_bucket_and_counts_add() -> None:
    hist = add({slot_of(10_000): 90}, {slot_of(200_000): 10})
    assert abs((percentile(hist, 50) or 0) - 10_000) <= 10_000 / 8
    assert abs((percentile(hist, 99) or 0) - 200_000) <= 200_000 / 8
    assert percentile({}, 50) is None
    assert list(cumulative(hist))[-1][1] == 100
