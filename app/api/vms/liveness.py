"""A worker's liveness: how old its heartbeat is, whether it counts as alive, and a VM's body
with both computed now."""

from __future__ import annotations

from datetime import datetime

from app.schemas import VmOut
from contract.config import get_settings
from contract.models import Vm, VmState, utcnow


def heartbeat_age(heartbeat_at: datetime | None) -> float | None:
    """Seconds since the worker's last heartbeat, or None if it never beat."""
    return None if heartbeat_at is None else (utcnow() - heartbeat_at).total_seconds()


def is_alive(vm: Vm) -> bool:
    """A worker is alive while its heartbeat is younger than the configured timeout."""
    age = heartbeat_age(vm.heartbeat_at)
    timeout = get_settings().heartbeat_timeout_s
    return age is not None and age < timeout and vm.state == VmState.RUNNING


def vm_out(vm: Vm) -> VmOut:
    """A VM with its liveness computed now."""
    out = VmOut.model_validate(vm)
    out.heartbeat_age_s = heartbeat_age(vm.heartbeat_at)
    out.observer_age_s = heartbeat_age(vm.observer_seen_at)
    out.alive = is_alive(vm)
    return out
