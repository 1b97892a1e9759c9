"""Database errors as one sentence for the log."""

from __future__ import annotations


def reason(exc: Exception) -> str:
    """The first line of a database error, with a hint when the schema is missing."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "no such table" in text or "does not exist" in text:
        text += " (run `iosignal migrate` first)"
    return text
