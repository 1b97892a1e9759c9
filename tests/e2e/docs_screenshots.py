"""The README's screenshots (docs/img/*.png), taken in headless Chromium from a running stack.

Run against a `make run`-style stack with the demo workload started and, for the observer's
parts, `sudo iosignal observe` on the same database, after a minute of samples:

    IOSIGNAL_DATABASE_URL=sqlite:////tmp/shot.db .venv/bin/iosignal run &
    IOSIGNAL_DATABASE_URL=sqlite:////tmp/shot.db sudo .venv/bin/iosignal observe &
    curl -X POST localhost:8000/api/demo -H 'content-type: application/json' -d '{"vm_id": 1}'
    sleep 60; .venv/bin/python tests/e2e/docs_screenshots.py http://127.0.0.1:8000

Writes docs/img/overview.png, live.png and hosts.png (1366 x 900, PNG).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
PAGES = {
    "overview": "/d/overview?since=-2m",
    "live": "/#/live?vm=1",
    "hosts": "/#/hosts?since=-1m",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--settle-s", type=float, default=6.0, help="wait for live charts")
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("IOSIGNAL_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        for name, path in PAGES.items():
            page.goto(args.base + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(args.settle_s * 1000)
            page.screenshot(path=str(IMG / f"{name}.png"))
            print(IMG / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
