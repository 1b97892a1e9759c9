"""The observer stands on contract and the daemon floor only: a running `iosignal observe`
never loads the worker (its KVM layer, machine and benches), as it promises never to open
/dev/kvm. import-linter checks the source; these check the processes."""

from __future__ import annotations

import re
import subprocess
import sys

from sqlalchemy import select
from support import wait_for

from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Vm

# -X importtime's lines: "import time:  self [us] | cumulative | imported package"
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$", re.MULTILINE)


def _worker_modules(names: list[str]) -> list[str]:
    return [n for n in names if n == "worker" or n.startswith("worker.")]


def test_importing_the_observer_loads_no_worker_module() -> None:
    script = (
        "import sys, cli.main, observer.main, observer.writer, observer.retention\n"
        "print('\\n'.join(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "observer.main" in loaded and "daemon.writer" in loaded
    assert _worker_modules(loaded) == []


def test_a_running_observer_has_loaded_no_worker_module(observer, vmm, tmp_path, monkeypatch):
    # Python itself reports every module the process imports, as it imports it (stderr, which
    # the fixture logs), lazy imports of the first ticks included: the real process, unchanged.
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    url = f"sqlite:///{tmp_path / 'iosignal.db'}"
    upgrade(url)
    engine = make_engine(url)
    guest = vmm(0x510)
    obs = observer(url)

    def seen() -> object:
        with engine.connect() as conn:
            return conn.execute(select(Vm.id).where(Vm.pid == guest.pid)).first()

    wait_for("the observer to write the VMM's VM", seen)
    assert obs.stop() == 0
    loaded = [name for _, name in IMPORTED.findall(obs.log())]
    assert "observer.main" in loaded and "daemon.ticker" in loaded  # the report is complete
    assert _worker_modules(loaded) == []
    engine.dispose()
