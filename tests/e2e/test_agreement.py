"""The owned VM's agreement table's arithmetic (static/js/agreement.js), in Chromium on the real
app's module: the figures shown and the verdict are the same counts of the same ticks, a tick
outside the window excuses nothing, a window of a tick or two says neither "agrees" nor
"differs", and a VM exiting on more than ten addresses agrees on every one of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = [pytest.mark.browser]

AGREEMENT = """async (ticks) => {
  const { TickWindow } = await import("/js/agreement.js");
  const window = new TickWindow();
  for (const tick of ticks) window.push(tick);
  return window.agreement();
}"""
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def tick(i: int, exits: dict[int, int], userspace: dict[int, int]) -> dict:
    """The stream's tick `i` (one second each): the worker's exits and the observer's userspace
    exits per address of pio 0x6100 + n, one byte wide."""

    def addr(n: int) -> dict:
        return {"space": "pio", "addr": 0x6100 + n, "len": 1}

    return {
        "t": (START + timedelta(seconds=i)).isoformat(),
        "interval_s": 1.0,
        "registrations": [],
        "answers": [],
        "exits": [addr(n) | {"exits": c} for n, c in exits.items()],
        "observed": [
            addr(n) | {"writes": c, "userspace": c, "in_kernel": 0} for n, c in userspace.items()
        ],
    }


def agreement(page, ticks: list[dict]) -> list[dict]:
    return page.evaluate(AGREEMENT, ticks)


def test_figures_and_verdict_come_from_the_same_ticks(app_only, page):
    page.goto(app_only.url + "/")
    # the case: the observer 2.9k/s, the worker 1.7k/s, and a lump of the observer's
    # rows in the tick before the window (they came late). The old verdict took its "one tick's
    # edge" from that tick, outside the figures' window, and printed "agrees".
    lump = tick(0, {0: 1700}, {0: 40_000})
    steady = [tick(i, {0: 1700}, {0: 2900}) for i in range(1, 11)]
    [row] = agreement(page, [lump, *steady])
    side = row["userspace"]
    assert (side["observer"], side["worker"], row["seconds"]) == (29_000, 17_000, 10.0)
    assert side["slack"] == 2900  # the window's own first and last ticks
    assert side["differs"] and not side["agrees"]
    # over one or two ticks the edge is the whole window: neither verdict, whatever the figures
    for short in ([lump, steady[0]], steady[:3]):
        [row] = agreement(page, short)
        assert not row["userspace"]["agrees"] and not row["userspace"]["differs"], short


def test_the_same_counts_agree_and_ten_ticks_are_enough_to_say_so(app_only, page):
    page.goto(app_only.url + "/")
    ticks = [tick(i, {0: 290}, {0: 290}) for i in range(11)]
    assert not agreement(page, ticks[:10])[0]["userspace"]["agrees"]  # nine ticks in: 11% edge
    [row] = agreement(page, ticks)
    assert row["userspace"] | {"slack": 290} == {
        "observer": 2900,
        "worker": 2900,
        "slack": 290,
        "agrees": True,
        "differs": False,
    }


def test_more_than_ten_exiting_addresses_agree_on_every_one(app_only, page):
    page.goto(app_only.url + "/")
    # 14 addresses, each tick listing both sides of all of them (the stream pairs them)
    counts = {n: 100 + n for n in range(14)}
    rows = agreement(page, [tick(i, counts, counts) for i in range(12)])
    assert len(rows) == 14
    assert all(r["userspace"]["agrees"] for r in rows), [r["userspace"] for r in rows]
