"""`FdObject`: the base of every BPF object class, owning one fd."""

from __future__ import annotations

import os
from typing import Any


class FdObject:
    """Owns one fd; closes it on `close()` or leaving a `with` block."""

    fd: int

    def close(self) -> None:
        """Close the fd (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
