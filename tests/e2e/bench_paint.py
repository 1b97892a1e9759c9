"""First full paint of a dashboard in Chromium (issue 12): 8 panels x 24 series over 1 h of 1 s
samples, with 1,000 registrations stored (tests/app/bench_dashboards.py's data and dashboard).

Run: .venv/bin/python tests/e2e/bench_paint.py [--regs 1000] [--ticks 3600] [--runs 5]
Prints, per run, the time from navigation start to the frame after every panel is drawn, for a
fresh browser (nothing cached) and a reload, next to the same page with no panels (the shell and
plotly alone) as the baseline, against the 1.5 s target. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "app")]

TARGET_MS = 1500.0
# Resolves performance.now() at the first frame after `count` panels are drawn.
PAINTED = """(count) => new Promise((resolve) => {
  const done = () => document.querySelectorAll('.panel .js-plotly-plot').length === count &&
    /panel\\(s\\)|No panels/.test(document.getElementById('dash-status')?.textContent || '');
  const painted = () => requestAnimationFrame(() => resolve(performance.now()));
  const poll = () => (done() ? painted() : setTimeout(poll, 5));
  poll();
})"""


def seed(url: str, regs: int, ticks: int) -> None:
    """The bench database: samples rolled up as the worker does, the 8-panel dashboard, and an
    empty one (the baseline)."""
    os.environ["IOSIGNAL_DATABASE_URL"] = url
    from bench_api import fill
    from bench_dashboards import EXIT_ADDRS, dashboard
    from fastapi.testclient import TestClient

    from app.main import create_app
    from contract.db import get_engine, get_sessionmaker
    from contract.migrate import upgrade
    from contract.models import utcnow
    from worker.retention import roll_up

    upgrade(url)
    started = time.perf_counter()
    vm_id, ids = fill(get_sessionmaker(), regs, ticks, EXIT_ADDRS)
    roll_up(get_engine(), vm_id, utcnow())
    took = time.perf_counter() - started
    print(f"{regs:,} registrations x {ticks:,} ticks stored in {took:.0f} s")
    client = TestClient(create_app())
    assert client.post("/api/dashboards", json=dashboard(vm_id, ids)).status_code == 201
    empty = {"name": "empty", "slug": "empty", "range": {"since": "-1h"}, "panels": []}
    assert client.post("/api/dashboards", json=empty).status_code == 201


def paint_ms(browser, url: str, count: int, runs: int) -> tuple[list[float], list[float]]:
    """(fresh-browser times, reload times) of `runs` paints of `url` with `count` panels."""
    fresh, reload = [], []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        fresh.append(page.evaluate(PAINTED, count))
        page.reload()
        reload.append(page.evaluate(PAINTED, count))
        context.close()
    return fresh, reload


def line(what: str, ms: list[float], base: float | None = None) -> str:
    med = statistics.median(ms)
    vs = f", {med - base:+.0f} ms over the shell" if base is not None else ""
    return (
        f"{what}: median {med:.0f} ms [{min(ms):.0f}-{max(ms):.0f}]"
        f" ({med / TARGET_MS:.2f} of the {TARGET_MS:.0f} ms target{vs})"
    )


def main() -> None:
    """Seed, start the app, time the paints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regs", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=3600)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` stops the app
    from dashboard_harness import CHROMIUM_ARGS, Stack, _env, start_app, stop
    from playwright.sync_api import sync_playwright
    from support import free_port

    tmp = Path(tempfile.mkdtemp(prefix="iosignal-paint-"))
    url = f"sqlite:///{tmp / 'paint.db'}"
    seed(url, args.regs, args.ticks)
    env = _env(url) | {"IOSIGNAL_SAMPLE_INTERVAL_S": "1.0"}
    stack = Stack(f"http://127.0.0.1:{free_port()}", url, env, tmp)
    start_app(stack)
    try:
        with sync_playwright() as pw:
            chromium = os.environ.get("IOSIGNAL_CHROMIUM", "/usr/bin/chromium")
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            base_fresh, base_reload = paint_ms(browser, stack.url + "/d/empty", 0, args.runs)
            fresh, reload = paint_ms(browser, stack.url + "/d/bench", 8, args.runs)
            browser.close()
    finally:
        stop(stack.procs)
    print(line("baseline, no panels, fresh browser", base_fresh))
    print(line("baseline, no panels, reload", base_reload))
    print(line("8 panels x 24 series, fresh browser", fresh, statistics.median(base_fresh)))
    print(line("8 panels x 24 series, reload", reload, statistics.median(base_reload)))


if __name__ == "__main__":
    main()
