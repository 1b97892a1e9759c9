"""`iosignal run`: migrates, serves health, runs the worker, and stops cleanly with no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support import free_port, wait_for

IOSIGNAL = str(Path(sys.executable).with_name("iosignal"))


def children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get_health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
            return json.load(r) if r.status == 200 else None
    except OSError:
        return None


@pytest.fixture
def started(tmp_path, kvm_path):
    """`iosignal run` in an empty folder with default settings but a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOSIGNAL_")}
    env.update(IOSIGNAL_PORT=str(port := free_port()), IOSIGNAL_KVM_PATH=kvm_path)
    proc = subprocess.Popen([IOSIGNAL, "run"], cwd=tmp_path, env=env)
    try:
        health = wait_for("GET /api/health", lambda: get_health(port), 60)
        yield proc, port, health
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_serves_health_with_a_live_worker_on_the_default_sqlite_file(started, tmp_path):
    _, port, health = started
    assert health["status"] == "ok" and health["database"] == "ok"
    vms = wait_for(
        "the worker to report alive",
        lambda: [v for v in (get_health(port) or {}).get("vms", []) if v["alive"]],
        30,
    )
    assert vms[0]["name"] == "vm0"
    assert (tmp_path / "data" / "iosignal.db").is_file()


def test_sigterm_stops_app_and_worker(started):
    proc, port, _ = started
    workers = wait_for("the worker process", lambda: children(proc.pid), 10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    wait_for("the worker to exit", lambda: not any(alive(p) for p in workers), 10)
    assert get_health(port) is None


def test_sigkill_of_run_takes_the_worker_down_too(started):
    proc, _, _ = started
    workers = wait_for("the worker process", lambda: children(proc.pid), 10)
    proc.kill()
    proc.wait()
    wait_for("the orphaned worker to exit", lambda: not any(alive(p) for p in workers), 15)


def _run_open(tmp_path, kvm_path, **extra) -> tuple[subprocess.Popen, int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOSIGNAL_")}
    env.update(IOSIGNAL_PORT=str(port := free_port()), IOSIGNAL_KVM_PATH=kvm_path, **extra)
    cmd = [IOSIGNAL, "run", "--host", "0.0.0.0"]
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE), port, env


def test_run_beyond_loopback_is_refused_without_a_token_before_any_worker(tmp_path, kvm_path):
    proc, _, _ = _run_open(tmp_path, kvm_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"iosignal token create" in err
    assert children(proc.pid) == []


def test_run_beyond_loopback_serves_with_the_admin_token(tmp_path, kvm_path):
    proc, port, _ = _run_open(tmp_path, kvm_path, IOSIGNAL_ADMIN_TOKEN="compose-secret")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/vms", headers={"Authorization": "Bearer compose-secret"}
    )

    def vms():
        try:
            with urllib.request.urlopen(request, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for("GET /api/vms with the admin token", vms, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
