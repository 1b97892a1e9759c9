"""The floor under the userspace rows of `iosignal bench`: the least a Python VMM can do per exit.

`bare_pass` runs one guest pass of `writes` userspace-exiting writes as KVM_RUN and nothing else:
no exit decode, no count, no check per exit. It knows how many exits the pass has, so it only
looks at the exit after the last write, which must be the guest's "pass done"; any exit in
between that was not a doorbell write (a signal, a fault) leaves the guest short of pass done and
fails that check. The bench times it beside the harness's PassRunner on the same guest and path,
so each run shows what the worker's own exit handling costs on top of KVM.
"""

from __future__ import annotations

import fcntl
from itertools import repeat

from contract.guest import CONTROL_PORT
from worker.exits import GuestFault, describe_exit
from worker.kvm import Vcpu
from worker.kvm.constants import KVM_EXIT_IO, KVM_RUN


def bare_pass(vcpu: Vcpu, writes: int, control_port: int = CONTROL_PORT) -> None:
    """KVM_RUN through `writes` exits and the pass done; GuestFault if the guest went elsewhere."""
    ioctl, fd = fcntl.ioctl, vcpu.fd
    for _ in repeat(None, writes):  # the measured loop: one KVM_RUN per guest write
        ioctl(fd, KVM_RUN, 0)
    ioctl(fd, KVM_RUN, 0)
    if vcpu.kvm_run.exit_reason != KVM_EXIT_IO or vcpu.io.port != control_port:
        raise GuestFault(
            f"after {writes} doorbell exits the guest was not at pass done: {describe_exit(vcpu)}"
        )
