"""The README stays a front door (short, its links and screenshots real); the rest is in docs/,
whose build (`mkdocs build --strict`, in `make test`) checks the links between pages."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 250


def test_readme_links_and_images_exist() -> None:
    targets = [t for t in LINK.findall(README.read_text()) if "://" not in t]
    assert targets, "the README links into docs/"
    assert [t for t in targets if not (ROOT / t).exists()] == []


def test_screenshots_stay_small() -> None:
    shots = sorted((ROOT / "docs" / "img").glob("*.png"))
    assert shots
    assert [(p.name, p.stat().st_size) for p in shots if p.stat().st_size > 300_000] == []
