"""A small eBPF assembler: named instructions and labels, assembled into `struct bpf_insn`s.

Enough for counting programs: moves, loads and stores, ALU, conditional jumps to labels, helper
calls, map fds, atomic add. Encodings from Documentation/bpf/standardization/instruction-set.rst.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# registers
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10  # read-only frame pointer; the stack is the 512 bytes below it

# instruction classes, sizes, modes, sources
_LD, _LDX, _ST, _STX, _ALU, _JMP, _ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
_IMM, _MEM, _ATOMIC = 0x00, 0x60, 0xC0
_K, _X = 0x00, 0x08
SIZES = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}  # bytes -> BPF_B/H/W/DW

_ALU_OPS = {"add": 0x00, "sub": 0x10, "mul": 0x20, "or": 0x40, "and": 0x50, "lsh": 0x60}
_ALU_OPS |= {"rsh": 0x70, "xor": 0xA0, "mov": 0xB0}
_JMP_OPS = {"jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jne": 0x50, "jlt": 0xA0, "jle": 0xB0}
_JA, _CALL, _EXIT = 0x00, 0x80, 0x90
_ATOMIC_ADD = 0x00
_PSEUDO_MAP_FD = 1

# helper function ids (enum bpf_func_id)
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
GET_CURRENT_PID_TGID = 14
GET_CURRENT_TASK = 35
PROBE_READ_KERNEL = 113
GET_CURRENT_TASK_BTF = 158

_INSN = struct.Struct("<BBhi")


class Insn(NamedTuple):
    """One instruction; `target` names a label for jumps (resolved when assembled)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None


class Asm:
    """Builds a program instruction by instruction; `assemble()` gives the bytes to load."""

    def __init__(self) -> None:
        self.insns: list[Insn] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        """Name the next instruction, as a jump target."""
        if name in self.labels:
            raise ValueError(f"label {name!r} defined twice")
        self.labels[name] = len(self.insns)

    def _emit(self, *insns: Insn) -> None:
        self.insns.extend(insns)

    def alu64(self, op: str, dst: int, src_or_imm: int, *, reg: bool = False) -> None:
        """dst = dst <op> src (a register when `reg`, else an immediate); 64-bit."""
        code = _ALU64 | _ALU_OPS[op] | (_X if reg else _K)
        if reg:
            self._emit(Insn(code, dst, src_or_imm))
        else:
            self._emit(Insn(code, dst, imm=src_or_imm))

    def mov(self, dst: int, imm: int) -> None:
        """dst = imm (sign-extended 32-bit immediate)."""
        self.alu64("mov", dst, imm)

    def mov_reg(self, dst: int, src: int) -> None:
        """dst = src."""
        self.alu64("mov", dst, src, reg=True)

    def load(self, size: int, dst: int, src: int, off: int) -> None:
        """dst = *(size bytes *)(src + off), zero-extended."""
        self._emit(Insn(_LDX | _MEM | SIZES[size], dst, src, off))

    def store(self, size: int, dst: int, off: int, src: int) -> None:
        """*(size bytes *)(dst + off) = src register."""
        self._emit(Insn(_STX | _MEM | SIZES[size], dst, src, off))

    def store_imm(self, size: int, dst: int, off: int, imm: int) -> None:
        """*(size bytes *)(dst + off) = imm."""
        self._emit(Insn(_ST | _MEM | SIZES[size], dst, 0, off, imm))

    def atomic_add(self, size: int, dst: int, off: int, src: int) -> None:
        """*(dst + off) += src, atomically (lock xadd); size 4 or 8."""
        self._emit(Insn(_STX | _ATOMIC | SIZES[size], dst, src, off, _ATOMIC_ADD))

    def jump(self, op: str, dst: int, src_or_imm: int, target: str, *, reg: bool = False) -> None:
        """if dst <op> src/imm goto target (64-bit compare)."""
        code = _JMP | _JMP_OPS[op] | (_X if reg else _K)
        if reg:
            self._emit(Insn(code, dst, src_or_imm, target=target))
        else:
            self._emit(Insn(code, dst, imm=src_or_imm, target=target))

    def goto(self, target: str) -> None:
        """goto target."""
        self._emit(Insn(_JMP | _JA, target=target))

    def call(self, helper: int) -> None:
        """Call a kernel helper; arguments in R1-R5, result in R0, R1-R5 clobbered."""
        self._emit(Insn(_JMP | _CALL, imm=helper))

    def exit(self) -> None:
        """Return R0."""
        self._emit(Insn(_JMP | _EXIT))

    def load_map_fd(self, dst: int, map_fd: int) -> None:
        """dst = the map with this fd (a two-slot 64-bit immediate the verifier rewrites)."""
        self._emit(Insn(_LD | _IMM | SIZES[8], dst, _PSEUDO_MAP_FD, imm=map_fd), Insn(0))

    def assemble(self) -> bytes:
        """The program as `struct bpf_insn`s, jump offsets resolved."""
        out = bytearray()
        for pc, insn in enumerate(self.insns):
            off = insn.off
            if insn.target is not None:
                if insn.target not in self.labels:
                    raise ValueError(f"jump to undefined label {insn.target!r}")
                off = self.labels[insn.target] - pc - 1
            out += _INSN.pack(insn.code, insn.dst | (insn.src << 4), off, insn.imm)
        return bytes(out)
