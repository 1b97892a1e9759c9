"""The page's own files: everything index.html loads is served, with no CDN."""

from __future__ import annotations

import re

from app.main import STATIC_DIR


def test_every_script_and_stylesheet_of_the_page_is_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.text == (STATIC_DIR / "index.html").read_text()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
    assert "/vendor/plotly-basic.min.js" in sources
    for source in (s for s in sources if not s.startswith("data:")):
        assert source.startswith("/"), f"{source}: the page loads nothing from elsewhere"
        served = client.get(source)
        assert served.status_code == 200, source
        assert len(served.content) > 0


def test_the_plotly_bundle_holds_every_trace_type_the_pages_draw(client):
    bundle = client.get("/vendor/plotly-basic.min.js").text
    assert bundle.startswith("/**\n* plotly.js (basic - minified)")
    drawn = set()
    for module in (STATIC_DIR / "js").rglob("*.js"):
        drawn |= set(
            re.findall(
                r'type: "(scatter\w*|bar\w*|pie|heatmap\w*|histogram\w*)"', module.read_text()
            )
        )
    assert drawn and drawn <= {"scatter", "bar", "pie"}, drawn  # what the basic bundle has
