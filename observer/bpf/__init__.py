"""The BPF layer: bpf(2) and perf_event_open(2) through ctypes, no library, no compiler.

`Map`, `Program`, `Link` own their fds (objects.py); `Asm` builds programs (asm.py); tracefs.py
reads tracepoint formats. Policy (what to count, how) lives above, in observer.programs.
"""

from observer.bpf.asm import Asm
from observer.bpf.map import Map
from observer.bpf.program import Link, Program, RunStats, VerifierError, loaded_programs
from observer.bpf.tracefs import EventFormat, FormatError, ensure_mounted, read_format

__all__ = [
    "Asm",
    "EventFormat",
    "FormatError",
    "Link",
    "Map",
    "Program",
    "RunStats",
    "VerifierError",
    "ensure_mounted",
    "loaded_programs",
    "read_format",
]
