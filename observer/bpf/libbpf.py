"""`BpfObject`: a compiled BPF object (observer/progs/*.bpf.o) loaded and attached by libbpf.

libbpf (Debian's libbpf1, the library every BPF tool links) does what a loader must get right:
ELF sections, CO-RE relocations against the running kernel's BTF, kfunc and map fixups,
attaching by section name. This module is ctypes over its stable C API: one class owning
the `struct bpf_object`, its links and ring buffers; errors are OSError with libbpf's errno,
and a refused load carries the verifier's log.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("iosignal.observer.libbpf")

_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
LOG_SIZE = 1 << 20


class LibbpfMissing(OSError):
    """libbpf.so.1 is not installed."""


class VerifierError(OSError):
    """The kernel refused a program; `log` is what libbpf and the verifier said."""

    def __init__(self, err: int, what: str, log_text: str) -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}\n{log_text}".rstrip())
        self.log = log_text


def _load_lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise LibbpfMissing(errno.ENOENT, f"libbpf not found ({exc}): install libbpf1") from None
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    for fn, res, args in (
        ("bpf_object__open_file", vp, [cp, vp]),
        ("bpf_object__load", ctypes.c_int, [vp]),
        ("bpf_object__close", None, [vp]),
        ("bpf_object__find_program_by_name", vp, [vp, cp]),
        ("bpf_object__find_map_by_name", vp, [vp, cp]),
        ("bpf_object__next_program", vp, [vp, vp]),
        ("bpf_program__name", cp, [vp]),
        ("bpf_program__set_autoload", ctypes.c_int, [vp, ctypes.c_bool]),
        ("bpf_program__autoload", ctypes.c_bool, [vp]),
        ("bpf_program__set_log_buf", ctypes.c_int, [vp, vp, ctypes.c_size_t]),
        ("bpf_program__set_log_level", ctypes.c_int, [vp, ctypes.c_uint32]),
        ("bpf_program__fd", ctypes.c_int, [vp]),
        ("bpf_program__attach", vp, [vp]),
        ("bpf_link__destroy", ctypes.c_int, [vp]),
        ("bpf_map__fd", ctypes.c_int, [vp]),
        ("ring_buffer__new", vp, [ctypes.c_int, _SAMPLE_FN, vp, vp]),
        ("ring_buffer__consume", ctypes.c_int, [vp]),
        ("ring_buffer__free", None, [vp]),
        ("libbpf_set_print", vp, [_PRINT_FN]),
    ):
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


_lib: ctypes.CDLL | None = None
_messages: list[str] = []  # what libbpf printed during the current open/load


def _print(level: int, fmt: bytes, args: int) -> int:
    """libbpf's messages: formatted with the C library's vsnprintf (va_list passed through)."""
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(args))
    _messages.append(buf.value.decode(errors="replace"))
    return 0


_libc = ctypes.CDLL(None)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_print_cb = _PRINT_FN(_print)


def lib() -> ctypes.CDLL:
    """libbpf, loaded once, its messages routed to this module."""
    global _lib
    if _lib is None:
        _lib = _load_lib()
        _lib.libbpf_set_print(_print_cb)
    return _lib


def _fail(what: str, err: int | None = None) -> OSError:
    err = err if err is not None else ctypes.get_errno()
    said = "".join(_messages[-20:]).strip()
    return OSError(err, f"{what}: {os.strerror(err)}" + (f" ({said})" if said else ""))


class RingBuffer:
    """A BPF ring buffer map read by libbpf; `consume()` hands each record to `on_record`.
    Owns `map_fd` (closed with it)."""

    def __init__(self, map_fd: int, on_record: Callable[[bytes], None]) -> None:
        self.fd = map_fd

        def sample(_ctx: Any, data: int, size: int) -> int:
            on_record(ctypes.string_at(data, size))
            return 0

        self._cb = _SAMPLE_FN(sample)  # kept: libbpf holds the pointer
        self._rb = lib().ring_buffer__new(map_fd, self._cb, None, None)
        if not self._rb:
            raise _fail("ring_buffer__new")

    def consume(self) -> int:
        """Read every record now in the buffer; how many there were."""
        n = lib().ring_buffer__consume(self._rb)
        if n < 0:
            raise OSError(-n, f"ring_buffer__consume: {os.strerror(-n)}")
        return int(n)

    def close(self) -> None:
        """Free the reader (idempotent)."""
        if self._rb:
            lib().ring_buffer__free(self._rb)
            self._rb = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class BpfObject:
    """One compiled object: opened, its chosen programs loaded and attached, its maps by name.

    `programs`: the programs to load and attach (the object's others are not loaded).
    Everything attaches or nothing stays: a failure closes what was made.
    """

    def __init__(self, path: str, programs: Iterable[str]) -> None:
        self.path = path
        self._links: dict[str, int] = {}
        self._buffers: list[RingBuffer] = []
        wanted = set(programs)
        _messages.clear()
        self._obj = lib().bpf_object__open_file(path.encode(), None)
        if not self._obj:
            raise _fail(f"open {path}")
        try:
            self._log = ctypes.create_string_buffer(LOG_SIZE)
            self._select(wanted)
            self._load()
            for name in sorted(wanted):
                self._attach(name)
        except BaseException:
            self.close()
            raise

    def _programs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        prog = None
        while True:
            prog = lib().bpf_object__next_program(self._obj, prog)
            if not prog:
                return out
            out[lib().bpf_program__name(prog).decode()] = prog

    def _select(self, wanted: set[str]) -> None:
        progs = self._programs()
        unknown = wanted - progs.keys()
        if unknown:
            raise OSError(errno.ENOENT, f"{self.path} has no program {sorted(unknown)}")
        for name, prog in progs.items():
            lib().bpf_program__set_autoload(prog, name in wanted)
            if name in wanted:
                lib().bpf_program__set_log_buf(prog, self._log, LOG_SIZE)

    def _load(self) -> None:
        rc = lib().bpf_object__load(self._obj)
        if rc:
            said = "".join(_messages) + self._log.value.decode(errors="replace")
            raise VerifierError(-rc, f"load {self.path}", said)

    def _attach(self, name: str) -> None:
        prog = self._program(name)
        link = lib().bpf_program__attach(prog)
        if not link:
            raise _fail(f"attach {name}")
        self._links[name] = link

    def _program(self, name: str) -> int:
        prog = lib().bpf_object__find_program_by_name(self._obj, name.encode())
        if not prog:
            raise OSError(errno.ENOENT, f"{self.path} has no program {name}")
        return int(prog)

    def attached(self) -> list[str]:
        """The programs attached, by name."""
        return sorted(self._links)

    def program_fd(self, name: str) -> int:
        """The kernel fd of a loaded program (its run-time statistics, its info)."""
        return int(lib().bpf_program__fd(self._program(name)))

    def program_fd_id(self, name: str) -> int:
        """The kernel's id of a loaded program (as PROG_GET_NEXT_ID lists it)."""
        from observer.bpf.program import prog_info

        return int(prog_info(self.program_fd(name)).id)

    def map_fd(self, name: str) -> int:
        """A new fd of the map `name` (the caller owns and closes it)."""
        m = lib().bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise OSError(errno.ENOENT, f"{self.path} has no map {name}")
        return os.dup(lib().bpf_map__fd(m))

    def ring_buffer(self, name: str, on_record: Callable[[bytes], None]) -> RingBuffer:
        """A reader of the ring buffer map `name`, closed with this object."""
        fd = self.map_fd(name)
        try:
            rb = RingBuffer(fd, on_record)
        except BaseException:
            os.close(fd)
            raise
        self._buffers.append(rb)
        return rb

    def close(self) -> None:
        """Detach every program, free the object (idempotent)."""
        for rb in self._buffers:
            rb.close()
        self._buffers = []
        for link in self._links.values():
            lib().bpf_link__destroy(link)
        self._links = {}
        if self._obj:
            lib().bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
