"""`iosignal applybench`: POST /ioeventfds -> 201 with the kernel's verdict, poll only vs wake-up.

Runs `iosignal api` and a real `iosignal worker` (on /dev/kvm) as processes on one database (a
temporary SQLite file by default), POSTs N registrations one at a time over HTTP and times each
answer: first with the worker polling only (IOSIGNAL_WAKEUP=false), then with the app's wake-up.
Then it times N/10 colliding POSTs, which the app refuses alone (409): the collision check.
A measurement, not a test.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import make_url

from contract.config import get_settings
from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Vm

BASE_ADDR = 0xD000_0000  # MMIO above the guest's RAM: every registration is one the kernel takes
MODES = (("poll only", False), ("wake-up", True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`python -m cli.main ARGS` with `env`, stopped with SIGTERM (then killed) at the end."""
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=os.environ | env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Api:
    """A keep-alive HTTP connection to the app: JSON in, (status, JSON) out."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, data, {"Content-Type": "application/json"})
            response = self.conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # the next call reconnects
            raise OSError(f"{method} {path}: {exc}") from exc


def _wait_until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None  # the app is still starting
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")


def _running_vm(api: Api, name: str) -> int | None:
    status, vms = api.call("GET", "/api/vms")
    if status == 401:
        raise RuntimeError("the database has API tokens: give applybench a scratch database")
    return next((v["id"] for v in vms if v["name"] == name and v["alive"]), None)


def _ms(values: list[float], q: float) -> float:
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _figures(values: list[float]) -> dict[str, float]:
    return {"p50": _ms(values, 50), "p99": _ms(values, 99), "max": 1000 * max(values)}


def _one_mode(api: Api, env: dict[str, str], name: str, count: int, gap_s: float) -> dict:
    """POST `count` registrations on a fresh worker's VM; then `count // 10` colliding ones."""
    with _process(["worker"], env | {"IOSIGNAL_VM_NAME": name}):
        vm_id = _wait_until(f"worker {name} running", lambda: _running_vm(api, name), 60)
        path = f"/api/vms/{vm_id}/ioeventfds"
        created = []
        rng = random.Random(1)
        for i in range(count):
            time.sleep(rng.uniform(0, gap_s))  # land at every phase of the worker's poll
            t0 = time.perf_counter()
            status, body = api.call(
                "POST", path, {"space": "mmio", "addr": BASE_ADDR + 8 * i, "len": 4}
            )
            created.append(time.perf_counter() - t0)
            if status != 201 or body["state"] != "active":
                raise RuntimeError(f"registration {i}: {status} {body}")
        refused = []
        for i in range(max(2, count // 10)):  # two at least: a percentile needs two
            t0 = time.perf_counter()
            status, _ = api.call(
                "POST", path, {"space": "mmio", "addr": BASE_ADDR + 8 * i, "len": 0}
            )
            refused.append(time.perf_counter() - t0)
            if status != 409:
                raise RuntimeError(f"collision {i} was not refused: {status}")
    tail = created[-max(2, count // 10) :]
    return {**_figures(created), "p50_last_10pct": _ms(tail, 50), "refused": _figures(refused)}


def run_applybench(database_url: str | None, count: int) -> dict[str, Any]:
    """Both modes on one database; the figures in milliseconds."""
    settings = get_settings()
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        if database_url is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="iosignal-applybench-"))
            database_url = f"sqlite:///{Path(tmp) / 'applybench.db'}"
        upgrade(database_url)
        port = _free_port()
        env = {
            "IOSIGNAL_DATABASE_URL": database_url,
            "IOSIGNAL_LOG_LEVEL": "warning",
            "IOSIGNAL_VERDICT_TIMEOUT_S": "10",
            "IOSIGNAL_ADMIN_TOKEN": "",
        }
        stack.enter_context(_process(["api", "--host", "127.0.0.1", "--port", str(port)], env))
        api = Api(port)
        _wait_until("the app listening", lambda: api.call("GET", "/api/rules")[0] == 200)
        names = [f"applybench-{'wake' if wakeup else 'poll'}-{os.getpid()}" for _, wakeup in MODES]
        try:
            modes = {
                label: _one_mode(
                    api,
                    env | {"IOSIGNAL_WAKEUP": str(wakeup).lower()},
                    name,
                    count,
                    settings.poll_interval_s,
                )
                for (label, wakeup), name in zip(MODES, names, strict=True)
            }
        finally:
            engine = make_engine(database_url)
            with engine.begin() as conn:  # leave a given database as we found it
                conn.execute(delete(Vm).where(Vm.name.in_(names)))
            engine.dispose()
    return {
        "database": make_url(database_url).get_backend_name(),
        "registrations": count,
        "poll_interval_ms": 1000 * settings.poll_interval_s,
        "modes": modes,
        # The figures count every wake-up of five processes: a busy machine stretches them.
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cores": os.cpu_count(),
    }


def cli_applybench(database_url: str | None, count: int, *, json_out: bool = False) -> int:
    """`iosignal applybench`: print the figures; the exit code."""
    result = run_applybench(database_url, count)
    if json_out:
        print(json.dumps(result))
        return 0
    poll, wake = (result["modes"][label] for label, _ in MODES)
    print(
        f"applybench on {result['database']}: {count} registrations POSTed one at a time, "
        f"each answered 201 with the kernel's verdict (real worker, /dev/kvm)"
    )
    print(f"{'POST -> 201, ms':32}{'p50':>8}{'p99':>8}{'max':>8}{'p50 last 10%':>14}")
    for label, row in (("poll only", poll), ("wake-up", wake)):
        name = (
            f"{label} ({result['poll_interval_ms']:g} ms poll)" if label == "poll only" else label
        )
        print(
            f"{name:32}{row['p50']:8.1f}{row['p99']:8.1f}{row['max']:8.1f}{row['p50_last_10pct']:14.1f}"
        )
    ratios = f"{wake['p50'] / poll['p50']:7.2f}x{wake['p99'] / poll['p99']:7.2f}x"
    print(f"{'wake-up / poll only':32}{ratios}")
    load = result["load_1min"]
    print(
        f"(load average {load[0]:g} at the start, {load[1]:g} at the end; {result['cores']} cores)"
    )
    refused = wake["refused"]
    print(
        f"POST -> 409 (collision, refused by the app alone) beside {count} registrations: "
        f"p50 {refused['p50']:.1f} ms, p99 {refused['p99']:.1f} ms"
    )
    return 0


def main() -> None:
    """`python -m benchmarks.applybench [DATABASE_URL] [COUNT]`."""
    url = sys.argv[1] if len(sys.argv) > 1 else None
    raise SystemExit(cli_applybench(url, int(sys.argv[2]) if len(sys.argv) > 2 else 1000))


if __name__ == "__main__":
    main()
