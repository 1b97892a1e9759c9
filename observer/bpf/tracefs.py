"""Tracepoint formats from tracefs: each event's id, field offsets and symbolic values.

A classic tracepoint hands a BPF program the event's record; where each field sits is written in
/sys/kernel/tracing/events/SYSTEM/EVENT/format, so programs are built from that file instead of
offsets copied from one kernel's headers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from typing import NamedTuple

TRACEFS = "/sys/kernel/tracing"

_FIELD = re.compile(
    r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)"
)
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(\w+),((?:\s*\{[^}]*\}\s*,?)+)\)")
_SYMBOL = re.compile(r"\{\s*(-?\d+)\s*,\s*((?:\"[^\"]*\"\s*)+)\}")


class FormatError(ValueError):
    """A tracepoint's format file is missing a field or says something unusable."""


class Field(NamedTuple):
    """Where one field sits in the event record."""

    name: str
    offset: int
    size: int
    signed: bool


class EventFormat(NamedTuple):
    """One tracepoint as tracefs describes it."""

    system: str
    name: str
    id: int
    fields: dict[str, Field]
    symbols: dict[str, dict[str, int]]  # field -> symbol name -> value, from __print_symbolic

    def field(self, name: str, sizes: tuple[int, ...] = (1, 2, 4, 8)) -> Field:
        """The field `name`; FormatError if absent or of a size a BPF load cannot read."""
        f = self.fields.get(name)
        if f is None:
            raise FormatError(f"tracepoint {self.system}:{self.name} has no field {name!r}")
        if f.size not in sizes:
            raise FormatError(
                f"field {name!r} of {self.system}:{self.name} is {f.size} bytes; "
                f"expected one of {', '.join(map(str, sizes))}"
            )
        return f

    def symbol(self, field: str, name: str) -> int:
        """The value the format's __print_symbolic gives `name` for `field`."""
        try:
            return self.symbols[field][name]
        except KeyError:
            raise FormatError(
                f"tracepoint {self.system}:{self.name} names no {name!r} for field {field!r}"
            ) from None


def parse_format(system: str, text: str) -> EventFormat:
    """Parse a tracefs `format` file; FormatError names what is missing."""
    head = dict(re.findall(r"^(name|ID):\s*(\S+)\s*$", text, re.MULTILINE))
    if "name" not in head or not head.get("ID", "").isdigit():
        raise FormatError(f"not a tracepoint format (no name/ID lines): {text[:80]!r}")
    fields = {}
    for m in _FIELD.finditer(text):
        name = re.sub(r"\[.*\]", "", m["decl"]).split()[-1]
        fields[name] = Field(name, int(m["offset"]), int(m["size"]), m["signed"] == "1")
    symbols: dict[str, dict[str, int]] = {}
    for m in _SYMBOLIC.finditer(text):
        table = symbols.setdefault(m[1], {})
        for value, strings in _SYMBOL.findall(m[2]):
            table["".join(re.findall(r"\"([^\"]*)\"", strings))] = int(value)
    return EventFormat(system, head["name"], int(head["ID"]), fields, symbols)


def read_format(system: str, event: str, root: str = TRACEFS) -> EventFormat:
    """The format of SYSTEM:EVENT; FileNotFoundError if this kernel has no such tracepoint."""
    path = os.path.join(root, "events", system, event, "format")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"this kernel has no tracepoint {system}:{event} ({path})"
        ) from None
    return parse_format(system, text)


def ensure_mounted(root: str = TRACEFS) -> None:
    """Mount tracefs at `root` unless it is there already (mount(2) needs CAP_SYS_ADMIN)."""
    if os.path.isdir(os.path.join(root, "events")):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", root.encode(), b"tracefs", 0, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot mount tracefs at {root}: {os.strerror(code)}")
