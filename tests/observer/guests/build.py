"""Assemble diskread.S into diskread.bin (the committed boot sector): `python build.py`.

The image is a 512-byte boot sector linked at 0x7c00, where SeaBIOS loads it. Needs binutils
(`as`, `ld`); the tests check that the committed image is what this produces.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "diskread.S"
IMAGE = HERE / "diskread.bin"
REQUESTS_OFFSET = 0x1F0  # the `requests` dword (.org 0x1f0 in diskread.S)
SECTOR = 512


def assemble(source: Path = SOURCE) -> bytes:
    """The boot sector `source` assembles to, as bytes."""
    for tool in ("as", "ld"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"`{tool}` not found: install binutils to assemble {source}")
    with tempfile.TemporaryDirectory() as tmp:
        obj, out = Path(tmp) / "guest.o", Path(tmp) / "guest.bin"
        subprocess.run(["as", "--32", "-o", str(obj), str(source)], check=True)
        link = ["ld", "-m", "elf_i386", "-e", "start", "-Ttext=0x7c00", "--oformat=binary"]
        subprocess.run([*link, "-o", str(out), str(obj)], check=True)
        data = out.read_bytes()
    if len(data) != SECTOR or data[-2:] != b"\x55\xaa":
        raise ValueError(f"{source} must assemble to one sector ending 55 aa, got {len(data)} B")
    return data


def with_requests(sector: bytes, requests: int) -> bytes:
    """The boot sector set to make `requests` reads (0 = read until killed)."""
    if not 0 <= requests < 2**32:
        raise ValueError(f"requests must fit an unsigned 32-bit dword, got {requests}")
    end = REQUESTS_OFFSET + 4
    return sector[:REQUESTS_OFFSET] + requests.to_bytes(4, "little") + sector[end:]


if __name__ == "__main__":
    IMAGE.write_bytes(assemble())
    print(f"wrote {IMAGE}", file=sys.stderr)
