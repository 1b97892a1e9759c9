"""Fixtures for the browser tests: a real app (uvicorn) and worker (/dev/kvm) on a temp SQLite
file, and headless Debian Chromium driven by Playwright that fails a test on any console error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_harness import (
    CHROMIUM_ARGS,
    ConsoleWatch,
    Stack,
    start_stack,
    stop,
    worker_ready,
)
from support import need


@pytest.fixture(scope="module")
def stack(tmp_path_factory, kvm_path) -> Iterator[Stack]:
    """App + worker on /dev/kvm, one per test module (a VM is slow to build per test)."""
    need("the worker process", worker_ready(), "worker/main.py (issue 4) is not in this checkout")
    s = start_stack(tmp_path_factory.mktemp("e2e"), kvm_path=kvm_path)
    yield s
    stop(s.procs)


@pytest.fixture
def app_only(tmp_path) -> Iterator[Stack]:
    """The app alone (no worker): for pages' empty states, tokens and pending registrations."""
    s = start_stack(tmp_path, kvm_path=None)
    yield s
    stop(s.procs)


@pytest.fixture(scope="session")
def browser(chromium_path):
    """Headless Debian Chromium (never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh page at laptop size; fails the test on unexpected console errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.console_watch = ConsoleWatch(pg)
    yield pg
    errors = pg.console_watch.unexpected()
    context.close()
    assert not errors, f"console errors on {request.node.name}: {errors}"
