"""The doorbell guest's memory layout: the facts the app's rules and the worker's guest share.

Guest physical memory (RAM at GPA 0, `mem_size` bytes, default 2 MiB):
    0x1000  PML4          0x2000  PDPT          0x3000-0x6fff  4 page directories (2 MiB pages)
    0x8000  code (doorbell.bin)                 0x10000 doorbell table (see doorbell.S)
Everything below 4 GiB is identity-mapped, so any MMIO address outside RAM and below 4 GiB can
be rung; writes there reach KVM as MMIO (no memslot), the ioeventfd buses, then userspace.
"""

from __future__ import annotations

DEFAULT_MEM_SIZE = 2 << 20
PML4_GPA = 0x1000
PDPT_GPA = 0x2000
PD_GPA = 0x3000
CODE_GPA = 0x8000
TABLE_GPA = 0x10000
TABLE_END = 0x20000
MAPPED_LIMIT = 4 << 30  # identity-mapped: [0, 4 GiB)

# The doorbell table: a 64-byte header, then entries of four u64s (kind, addr, value, count).
TABLE_ENTRIES_OFFSET = 64
TABLE_ENTRY_SIZE = 32
TABLE_ENTRIES = (TABLE_END - TABLE_GPA - TABLE_ENTRIES_OFFSET) // TABLE_ENTRY_SIZE  # 2,046

# The guest's "pass done" port: QEMU's isa-debug-exit port, a well-known "guest says done".
# Registrations there would swallow the signal, so the rules refuse them.
CONTROL_PORT = 0xF4

# The writes the guest's table can express, by space: its entry kinds (doorbell.S).
WRITE_WIDTHS = {"pio": (1, 2, 4), "mmio": (1, 2, 4, 8)}
