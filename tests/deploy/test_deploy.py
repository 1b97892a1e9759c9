"""deploy/: the systemd units pass `systemd-analyze verify` and give each command what it needs
and no more; the observer's DaemonSet declares the host pid namespace, the same capabilities,
tracefs and debugfs, and Prometheus's scrape annotations for the port it serves."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from deployfiles import INSTALLED, OBSERVER_UNIT, SYSTEMD, bounding_set, daemonset, unit
from support import need

OBSERVER_CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
DOCS = Path(__file__).resolve().parents[2] / "docs"
UNITS = sorted(p.name for p in SYSTEMD.glob("*.service"))


def test_there_is_a_unit_for_each_long_running_command_and_the_migration() -> None:
    commands = {name: unit(name)["Service"]["ExecStart"][0].split()[:2] for name in UNITS}
    assert {tuple(c) for c in commands.values()} == {
        (INSTALLED, "observe"), (INSTALLED, "worker"), (INSTALLED, "api"), (INSTALLED, "migrate")
    }  # fmt: skip
    for name in UNITS:
        service = unit(name)["Service"]
        assert service["NoNewPrivileges"] == ["yes"], name
        assert service["ProtectSystem"] == ["strict"], name


def test_the_observer_is_root_with_four_capabilities_and_sees_every_process() -> None:
    u = unit(OBSERVER_UNIT)
    service = u["Service"]
    assert bounding_set(u) == OBSERVER_CAPS
    assert service["User"] == ["root"]
    assert "--metrics-address" in service["ExecStart"][0]
    assert "/sys/kernel/tracing" in u["Unit"]["RequiresMountsFor"]
    # what would hide other processes, their /proc, or tracefs and debugfs from it
    for key in (
        "ProtectProc",
        "ProcSubset",
        "ProtectKernelTunables",
        "PrivateUsers",
        "PrivatePIDs",
    ):
        assert key not in service, key


def test_the_worker_has_dev_kvm_through_its_group_and_no_capability() -> None:
    u = unit("iosignal-worker@.service")
    service = u["Service"]
    assert bounding_set(u) == set() and service["AmbientCapabilities"] == [""]
    assert service["User"] == ["iosignal"] and service["SupplementaryGroups"] == ["kvm"]
    assert service["DevicePolicy"] == ["closed"] and service["DeviceAllow"] == ["/dev/kvm rw"]
    assert "IOSIGNAL_VM_NAME=%i" in service["Environment"]
    assert "iosignal-migrate.service" in u["Unit"]["Requires"]


def test_the_api_has_no_device_and_no_capability() -> None:
    u = unit("iosignal-api.service")
    service = u["Service"]
    assert bounding_set(u) == set()
    assert service["PrivateDevices"] == ["yes"] and "SupplementaryGroups" not in service
    assert service["User"] == ["iosignal"]
    sysusers = (SYSTEMD / "iosignal.sysusers").read_text()
    assert not re.search(r"^m\s+iosignal\s+kvm", sysusers, re.M)  # kvm is the worker's alone


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need("systemd-analyze", analyze is not None, "install systemd (.ci/run does)")
    assert analyze is not None
    # verify checks that ExecStart's command exists: point it at this checkout's
    command = Path(sys.executable).with_name("iosignal")
    assert command.exists(), command
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace(INSTALLED, str(command))
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if "iosignal" in line]
    assert ours == [], done.stderr  # no warning about our units either


def test_the_daemonset_runs_the_observer_on_the_host_pid_namespace() -> None:
    ds = daemonset()
    assert (ds["apiVersion"], ds["kind"]) == ("apps/v1", "DaemonSet")
    spec, template = ds["spec"], ds["spec"]["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod["hostPID"] is True and not pod.get("hostNetwork", False)
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["iosignal", "observe"] and "--no-database" in command
    address = command[command.index("--metrics-address") + 1]
    port = int(address.rsplit(":", 1)[1])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    env = {e["name"]: e for e in container["env"]}
    assert env["IOSIGNAL_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_the_daemonset_has_the_observers_capabilities_and_the_host_tracing_folders() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {f"CAP_{c}" for c in security["capabilities"]["add"]} == OBSERVER_CAPS
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    for path in ("/sys/kernel/tracing", "/sys/kernel/debug"):
        (name,) = [n for n, m in mounts.items() if m["mountPath"] == path]
        assert mounts[name]["readOnly"] is True and volumes[name] == path
    assert "devices" not in container and not pod.get("hostIPC", False)


def test_the_docs_name_the_capabilities_the_units_grant() -> None:
    named = set(re.findall(r"CAP_[A-Z_]+", (DOCS / "observer.md").read_text()))
    assert named >= OBSERVER_CAPS
    deployment = (DOCS / "deployment.md").read_text()
    for cap in OBSERVER_CAPS:
        assert cap in deployment, cap
