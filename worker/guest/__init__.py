"""The guests: doorbell.S (one-way doorbells) and roundtrip.S (requests answered by interrupts),
assembled; their layout is contract.guest's."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from contract.guest import (
    CODE_GPA,
    CONTROL_PORT,
    DEFAULT_MEM_SIZE,
    MAPPED_LIMIT,
    PD_GPA,
    PDPT_GPA,
    PML4_GPA,
    TABLE_END,
    TABLE_GPA,
)

__all__ = [
    "CODE_GPA",
    "CONTROL_PORT",
    "DEFAULT_MEM_SIZE",
    "IMAGE",
    "MAPPED_LIMIT",
    "PDPT_GPA",
    "PD_GPA",
    "PML4_GPA",
    "ROUNDTRIP_IMAGE",
    "ROUNDTRIP_SOURCE",
    "SOURCE",
    "TABLE_END",
    "TABLE_GPA",
    "assemble",
    "image",
]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "doorbell.S"
IMAGE = HERE / "doorbell.bin"
ROUNDTRIP_SOURCE = HERE / "roundtrip.S"
ROUNDTRIP_IMAGE = HERE / "roundtrip.bin"
SOURCES = {SOURCE: IMAGE, ROUNDTRIP_SOURCE: ROUNDTRIP_IMAGE}  # what `python -m worker.guest` builds


def assemble(source: Path = SOURCE) -> bytes:
    """Assemble a guest source (doorbell.S by default) into a flat binary with binutils."""
    for tool in ("as", "ld"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"`{tool}` not found: install binutils to assemble {source}")
    with tempfile.TemporaryDirectory() as tmp:
        obj, out = Path(tmp) / "doorbell.o", Path(tmp) / "doorbell.bin"
        # -I: the sources .include their shared interrupt half (interrupts.inc) from beside them
        as_cmd = ["as", "--64", "-I", str(source.parent), "-o", str(obj), str(source)]
        subprocess.run(as_cmd, check=True)
        subprocess.run(
            ["ld", "-e", "start", "-Ttext=0", "--oformat=binary", "-o", str(out), str(obj)],
            check=True,
        )
        return out.read_bytes()


def image(path: Path = IMAGE) -> bytes:
    """A committed, pre-assembled guest, doorbell.bin by default (works without binutils)."""
    return path.read_bytes()
