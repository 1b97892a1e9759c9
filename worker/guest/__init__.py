"""The doorbell guest: its memory layout, its image (doorbell.S assembled) and its table.

Guest physical memory (RAM at GPA 0, `mem_size` bytes, default 2 MiB):
    0x1000  PML4          0x2000  PDPT          0x3000-0x6fff  4 page directories (2 MiB pages)
    0x8000  code (doorbell.bin)                 0x10000 doorbell table (see doorbell.S)
Everything below 4 GiB is identity-mapped, so any MMIO address outside RAM and below 4 GiB can
be rung; writes there reach KVM as MMIO (no memslot), the ioeventfd buses, then userspace.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "doorbell.S"
IMAGE = HERE / "doorbell.bin"

DEFAULT_MEM_SIZE = 2 << 20
PML4_GPA = 0x1000
PDPT_GPA = 0x2000
PD_GPA = 0x3000
CODE_GPA = 0x8000
TABLE_GPA = 0x10000
TABLE_END = 0x20000
MAPPED_LIMIT = 4 << 30  # identity-mapped: [0, 4 GiB)

# The guest's "pass done" port: QEMU's isa-debug-exit port, a well-known "guest says done".
# Registrations there would swallow the signal, so the registry refuses them.
CONTROL_PORT = 0xF4


def assemble(source: Path = SOURCE) -> bytes:
    """Assemble doorbell.S into a flat binary with binutils (`as`, `ld`)."""
    for tool in ("as", "ld"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"`{tool}` not found: install binutils to assemble {source}")
    with tempfile.TemporaryDirectory() as tmp:
        obj, out = Path(tmp) / "doorbell.o", Path(tmp) / "doorbell.bin"
        subprocess.run(["as", "--64", "-o", str(obj), str(source)], check=True)
        subprocess.run(
            ["ld", "-e", "start", "-Ttext=0", "--oformat=binary", "-o", str(out), str(obj)],
            check=True,
        )
        return out.read_bytes()


def image() -> bytes:
    """The committed, pre-assembled guest (works without binutils)."""
    return IMAGE.read_bytes()
