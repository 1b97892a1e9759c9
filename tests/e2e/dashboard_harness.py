"""Helpers for the browser tests: start the real app and worker, talk to them, watch the page."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import free_port, need, wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Stack:
    """A running app (and maybe worker) on one database."""

    url: str
    database_url: str
    env: dict[str, str]
    tmp: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    cwd: Path = ROOT  # where the app runs: its packages come first on its path

    def call(self, method: str, path: str, body=None, token: str | None = None):
        """One JSON request to the app; returns (status, parsed body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    def health(self) -> dict | None:
        try:
            status, body = self.call("GET", "/api/health")
        except OSError:
            return None
        return body if status == 200 else None


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOSIGNAL_")}
    env.update(
        IOSIGNAL_DATABASE_URL=database_url,
        IOSIGNAL_SAMPLE_INTERVAL_S="0.2",
        IOSIGNAL_VM_NAME="e2e",
        IOSIGNAL_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    return env


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def observing(
    stack: Stack, ready: Callable[[Path], Any], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A real `iosignal observe` on the stack's database, yielded once `ready(log)` is true
    (skipped, or failed under CI, if the observer could not start), stopped after."""
    log = stack.tmp / f"observer-{free_port()}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "observe"],
        cwd=ROOT,
        env=stack.env | (env or {}),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready(log) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        need("iosignal observe", proc.poll() is None, log.read_text().strip())
        assert ready(log), "the observer did not get ready: " + log.read_text()
        yield proc
    finally:
        stop([proc])


def _spawn(stack: Stack, command: str, extra: list[str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", command, *extra],
        cwd=stack.cwd,
        env=stack.env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    stack.procs.append(proc)
    return proc


def start_app(stack: Stack) -> subprocess.Popen:
    """Starts (or restarts) the app on the stack's port and waits for /api/health."""
    port = stack.url.rsplit(":", 1)[1]
    proc = _spawn(stack, "api", ["--port", port], stack.tmp / "app.log")
    wait_for("the app's /api/health", stack.health, 60)
    return proc


def start_stack(tmp: Path, *, kvm_path: str | None, packages: Path | None = None) -> Stack:
    """Migrate a new SQLite file, start the app and, given `kvm_path`, the worker. `packages`:
    a directory whose packages the app and worker import before the checkout's (an edited copy
    of `contract`, say); the migration runs the checkout's."""
    database_url = f"sqlite:///{tmp / 'iosignal.db'}"
    env = _env(database_url)
    if kvm_path:
        env["IOSIGNAL_KVM_PATH"] = kvm_path
    if packages:
        env["PYTHONPATH"] = f"{packages}{os.pathsep}{ROOT}"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    stack = Stack(f"http://127.0.0.1:{free_port()}", database_url, env, tmp, cwd=packages or ROOT)
    try:
        start_app(stack)
        if kvm_path:
            _spawn(stack, "worker", [], tmp / "worker.log")
            wait_for(
                "the worker to report alive",
                lambda: any(v["alive"] for v in (stack.health() or {}).get("vms", [])),
                60,
            )
    except BaseException:
        stop(stack.procs)
        raise
    return stack


def add_worker(stack: Stack, vm_name: str) -> int:
    """Starts one more worker, for a second VM on the same database; returns its VM's id."""
    env = {**stack.env, "IOSIGNAL_VM_NAME": vm_name}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"],
        cwd=ROOT,
        env=env,
        stdout=(stack.tmp / f"worker-{vm_name}.log").open("a"),
        stderr=subprocess.STDOUT,
    )
    stack.procs.append(proc)

    def alive() -> dict | None:
        vms = (stack.health() or {}).get("vms", [])
        return next((v for v in vms if v["name"] == vm_name and v["alive"]), None)

    return wait_for(f"the worker of {vm_name} to report alive", alive, 60)["id"]


def insert(stack: Stack, model, **values) -> int:
    """Writes one row as the worker would (the database is the contract); returns its id."""
    from contract.db import make_engine

    engine = make_engine(stack.database_url)
    with engine.begin() as conn:
        pk = conn.execute(model.__table__.insert().values(**values)).inserted_primary_key[0]
    engine.dispose()
    return pk


def add_offline_vm(stack: Stack, name: str = "offline") -> int:
    """A VM row as a stopped worker leaves it: its worker is away."""
    from contract.models import Vm, utcnow

    return insert(
        stack,
        Vm,
        name=name,
        host="testhost",
        kernel="6.1.0-test",
        capabilities={},
        state="stopped",
        workload_version=0,
        created_at=utcnow(),
    )


def add_token(stack: Stack, name: str, role: str) -> str:
    """Stores an API token (its hash only, as `iosignal token create` does); returns it."""
    import secrets

    from app.core.security import hash_token
    from contract.db import make_engine
    from contract.models import ApiToken, utcnow

    token = secrets.token_urlsafe(24)
    engine = make_engine(stack.database_url)
    with engine.begin() as conn:
        conn.execute(
            ApiToken.__table__.insert().values(
                name=name, role=role, token_hash=hash_token(token), created_at=utcnow()
            )
        )
    engine.dispose()
    return token


def worker_ready() -> bool:
    """The worker process (worker/main.py) exists in this checkout."""
    return importlib.util.find_spec("worker.main") is not None


class ConsoleWatch:
    """Console errors and uncaught exceptions of one page; `allow` whitelists expected ones."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} [{message.location.get('url')}]")

    def allow(self, pattern: str) -> None:
        """An error text the test provokes on purpose (e.g. a 409 it asked for)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def screenshot(page, name: str) -> Path:
    """Saves a full-page screenshot to test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-picture
    page.screenshot(path=str(path), full_page=True)
    return path


class TickingVmm:
    """An observed VMM as the observer's real writer stores it: `tick()` (a subclass's) on a
    thread every `tick_s` from `thread.start()` until `close()`."""

    def __init__(self, database_url: str, host: str, tick_s: float, started_at: Any = None) -> None:
        from contract.db import make_engine
        from observer.writer import ObservedWriter

        self.engine = make_engine(database_url)
        self.writer = ObservedWriter(self.engine, host, started_at=started_at)
        self.tick_s = tick_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.wait(self.tick_s):
            self.tick()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.engine.dispose()
