"""The host's flavour, stored with every VM row and benchmark run so trends compare like with
like: the CPU model, the loaded KVM module and whether this KVM itself runs in a VM (nested)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TypedDict

# In the order they are looked for; another kvm_* module is reported by its name.
KVM_MODULES = ("kvm_intel", "kvm_amd", "kvm_pvm")


class Flavour(TypedDict):
    """What `flavour()` reports (the columns of the same names on vms and benchmark_runs)."""

    cpu_model: str
    kvm_module: str
    kvm_nested: bool | None


def _cpuinfo(path: Path) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} if unreadable)."""
    fields: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough: a host has one model
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """`AMD EPYC 7763 64-Core Processor`: the CPU's model name (the machine type if none)."""
    fields = _cpuinfo(cpuinfo)
    return fields.get("model name") or fields.get("Model") or platform.machine()


def kvm_module(sys_module: Path = Path("/sys/module")) -> str:
    """The loaded KVM vendor module (`kvm_intel`, `kvm_amd`, `kvm_pvm`, ...), or "" if none."""
    for name in KVM_MODULES:
        if (sys_module / name).is_dir():
            return name
    others = sorted(p.name for p in sys_module.glob("kvm_*") if p.is_dir())
    return others[0] if others else ""


def kvm_nested(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether this KVM is nested: the host is itself a guest (the CPU's `hypervisor` flag).

    Not the module's `nested` parameter: that says whether KVM may *offer* nesting to its
    guests, which does not change what a doorbell costs here, and kvm_pvm has none.
    None when the CPU lists no flags (not x86).
    """
    flags = _cpuinfo(cpuinfo).get("flags")
    return None if flags is None else "hypervisor" in flags.split()


def flavour() -> Flavour:
    """This host's CPU model and KVM flavour."""
    return Flavour(cpu_model=cpu_model(), kvm_module=kvm_module(), kvm_nested=kvm_nested())
