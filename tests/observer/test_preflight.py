"""What `iosignal observe` says when it cannot run, and that it then leaves nothing attached."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from observer.bpf import loaded_programs
from observer.preflight import ObserverUnavailable, open_probe
from observer.probe import OPTIONAL, REQUIRED


def _fake_tracefs(tmp_path, real: str, events=REQUIRED + OPTIONAL):
    for event in events:
        src = f"{real}/events/kvm/{event}/format"
        dst = tmp_path / "events" / "kvm" / event
        dst.mkdir(parents=True)
        shutil.copy(src, dst / "format")
    return tmp_path


def _ours() -> list[str]:
    return [name for _, name in loaded_programs() if name.startswith("iosig_")]


def test_a_missing_tracepoint_is_named(tracefs: str, tmp_path) -> None:
    root = _fake_tracefs(tmp_path, tracefs, ("kvm_pio", "kvm_mmio"))
    with pytest.raises(ObserverUnavailable, match=r"no kvm:kvm_userspace_exit tracepoint"):
        open_probe(str(root))


def test_without_privileges_observe_exits_1_with_one_sentence(tracefs: str) -> None:
    # uid 0 with no capabilities at all: bpf(2) refuses, as for an unprivileged user.
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) drops the capabilities"
    cmd = [setpriv, "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m", "cli.main"]
    done = subprocess.run([*cmd, "observe"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert "not permitted" in errors[0] and "CAP_BPF and CAP_PERFMON" in errors[0]


def test_without_privileges_the_bench_exits_1_with_the_same_sentence(tracefs: str) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) drops the capabilities"
    cmd = [setpriv, "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m", "cli.main"]
    done = subprocess.run([*cmd, "observe", "--bench"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    said = " ".join(done.stderr.split())  # rich wraps to the terminal's width
    assert said.startswith("cannot measure:") and "CAP_BPF and CAP_PERFMON" in said, said
    assert "Traceback" not in done.stderr


def test_without_syscall_tracepoints_the_probe_counts_and_hears_no_registrations(
    tracefs: str, tmp_path
) -> None:
    """A kernel without raw syscall tracepoints (no events/raw_syscalls): the counting programs
    attach, the registration programs are left out, and the observer says so (main.py)."""
    root = _fake_tracefs(tmp_path, tracefs)
    with open_probe(str(root)) as probe:
        assert probe.ioctls is None
        assert probe.counts is not None
        assert "sys_enter" not in probe.events()
    with open_probe(tracefs) as probe:
        assert probe.ioctls is not None
        assert {"sys_enter", "sys_exit"} <= set(probe.events())
    with open_probe(tracefs, registrations=False) as probe:  # iosignal observe --no-registrations
        assert probe.ioctls is None and probe.counts is not None
        assert "sys_enter" not in probe.events()
