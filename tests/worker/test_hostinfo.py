"""The host's flavour: CPU model, KVM module and nesting, from /proc/cpuinfo and /sys/module."""

from __future__ import annotations

from pathlib import Path

from worker.hostinfo import cpu_model, flavour, kvm_module, kvm_nested

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu vme de pse vmx {extra}

processor\t: 1
model name\t: something else
"""
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\n\nModel\t\t: Raspberry Pi 4 Model B\n"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_cpu_model_and_nesting_from_cpuinfo(tmp_path: Path) -> None:
    guest = _file(tmp_path, X86.format(extra="hypervisor lm"))
    assert cpu_model(guest) == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert kvm_nested(guest) is True  # this host is itself a VM: its KVM is nested
    metal = _file(tmp_path, X86.format(extra="lm"))
    assert kvm_nested(metal) is False
    arm = _file(tmp_path, ARM)
    assert kvm_nested(arm) is None  # no flags to tell
    assert cpu_model(tmp_path / "missing") != ""  # the machine type, not an error


def test_kvm_module_is_the_loaded_vendor_module(tmp_path: Path) -> None:
    assert kvm_module(tmp_path) == ""
    (tmp_path / "kvm").mkdir()
    assert kvm_module(tmp_path) == ""  # the core module alone names no flavour
    (tmp_path / "kvm_other").mkdir()
    assert kvm_module(tmp_path) == "kvm_other"
    (tmp_path / "kvm_pvm").mkdir()
    assert kvm_module(tmp_path) == "kvm_pvm"
    (tmp_path / "kvm_amd").mkdir()
    assert kvm_module(tmp_path) == "kvm_amd"


def test_this_host(kvm_path: str) -> None:
    """With /dev/kvm usable, a vendor module is loaded and the CPU has a name."""
    host = flavour()
    assert host["kvm_module"].startswith("kvm_")
    assert Path("/sys/module", host["kvm_module"]).is_dir()
    assert host["cpu_model"]
    print(host)
