"""`Vmm`: tests/observer/vmm.py as its own process, a separate VMM the observer can watch (used
by the observer's tests and by the browser tests that run a real observer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "observer" / "vmm.py"


class Vmm:
    """A running tests/observer/vmm.py process: a separate VMM the observer can watch."""

    def __init__(
        self,
        *ioeventfd_ports: int,
        datamatch: dict[int, int] | None = None,
        user: tuple[int, int] | None = None,
    ) -> None:
        """`user`: run it as this (uid, gid), without capabilities, as a VMM of another user."""
        match = datamatch or {}
        run_as = []
        if user is not None:
            uid, gid = user
            run_as = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        args = [
            a
            for p in ioeventfd_ports
            for a in ("--ioeventfd", hex(p) + (f":{match[p]:#x}" if p in match else ""))
        ]
        self.proc = subprocess.Popen(
            [*run_as, sys.executable, str(SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self._answer()["ready"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the test VMM exited ({self.proc.wait()})")
        return json.loads(line)

    def _ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def ring(self, space: str, addr: int, length: int, n: int, value: int = 1) -> None:
        """The guest writes `value` `n` times to `addr` (returns when the pass is done)."""
        self._ask(f"ring {space} {addr:#x} {length} {n} {value:#x}")

    def counts(self) -> dict:
        """The VMM's own figures: eventfd signals per port, userspace exits per address."""
        return self._ask("counts")

    def quit(self) -> None:
        """Let the VMM exit cleanly."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)

    def kill(self) -> None:
        """SIGKILL it if still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
