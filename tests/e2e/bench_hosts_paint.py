"""First paint of the Host view in Chromium over a filled fleet database (issue 19): the first 50
of 5,000 VMs (tests/app/bench_hosts.py fills it), and its next page, sorted by writes/s.

Run: .venv/bin/python tests/e2e/bench_hosts_paint.py sqlite:////tmp/hosts.db [--runs 5]
     (a database bench_hosts.py filled; a PostgreSQL URL works too)
Prints the time from navigation start to the frame after the page's rows are drawn, fresh
browser and reload, beside the same page answering a search that matches nothing (the shell and
one query: the baseline), against the 1.5 s target. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "app")]

# Resolves performance.now() at the first frame after `count` VM rows (or the empty state) show.
PAINTED = """(count) => new Promise((resolve) => {
  const done = () => (count ? document.querySelectorAll('tr[data-vm-id]').length === count
    : !!document.querySelector('#host-list .empty'));
  const painted = () => requestAnimationFrame(() => resolve(performance.now()));
  const poll = () => (done() ? painted() : setTimeout(poll, 5));
  poll();
})"""
WINDOW = "since=-1h"  # the fill's ticks are minutes old: the last hour holds them all


def main() -> None:
    """Start the app on the filled database, time the paints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` stops the app
    import bench_paint
    from bench_paint import line, paint_ms
    from dashboard_harness import CHROMIUM_ARGS, Stack, _env, start_app, stop
    from playwright.sync_api import sync_playwright
    from support import free_port

    bench_paint.PAINTED = PAINTED  # paint_ms waits on the page's own condition
    tmp = Path(tempfile.mkdtemp(prefix="iosignal-hosts-paint-"))
    stack = Stack(f"http://127.0.0.1:{free_port()}", args.url, _env(args.url), tmp)
    start_app(stack)
    pages = {
        "baseline, a search matching nothing": (f"/#/hosts?{WINDOW}&q=no-such-vm", 0),
        "first 50 of the fleet, by host": (f"/#/hosts?{WINDOW}", 50),
        "page 2, by writes/s": (f"/#/hosts?{WINDOW}&sort=writes&page=2", 50),
    }
    results = {}
    try:
        with sync_playwright() as pw:
            chromium = os.environ.get("IOSIGNAL_CHROMIUM", "/usr/bin/chromium")
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for what, (path, rows) in pages.items():
                results[what] = paint_ms(browser, stack.url + path, rows, args.runs)
            browser.close()
    finally:
        stop(stack.procs)
    for what, (fresh, reload) in results.items():
        print(line(f"{what}, fresh browser", fresh))
        print(line(f"{what}, reload", reload))


if __name__ == "__main__":
    main()
