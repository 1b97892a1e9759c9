"""The BPF layer: libbpf (through ctypes) loads the compiled objects of observer/progs;
bpf(2) through ctypes reads maps and program statistics; tracefs.py checks KVM's tracepoints.
Policy (what to count, how) lives in the C programs and in observer.probe.
"""

from observer.bpf.map import Map
from observer.bpf.program import RunStats, loaded_programs, prog_info
from observer.bpf.tracefs import EventFormat, FormatError, ensure_mounted, read_format

__all__ = [
    "EventFormat",
    "FormatError",
    "Map",
    "RunStats",
    "ensure_mounted",
    "loaded_programs",
    "prog_info",
    "read_format",
]
