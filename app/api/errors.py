"""Error bodies: `{"detail": "<sentence naming the rule>", "errno": "EEXIST"}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from contract.packed import CorruptPacked


class ApiError(Exception):
    """An HTTP error with a sentence for a person and, where one applies, the errno name."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        errno: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errno = errno
        self.headers = headers
        self.extra = extra or {}


def not_found(what: str, ident: object) -> ApiError:
    """404 for an unknown resource."""
    return ApiError(404, f"{what} {ident} not found", "ENOENT")


def _location(loc: tuple[Any, ...]) -> str:
    # ("body", "doorbells", 0, "addr") -> "doorbells[0].addr"; the body itself has no name.
    text = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    where = _location(tuple(error.get("loc", ())))
    # Our rule messages already name the field; pydantic's generic ones need the location.
    return msg if not where or msg.startswith(where.split(".")[-1]) else f"{where}: {msg}"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = {"detail": exc.detail, "errno": exc.errno, **exc.extra}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = "; ".join(dict.fromkeys(_message(e) for e in errors)) or "invalid request"
    # `errors` keeps pydantic's structured list for programs; `detail` is for people.
    safe = [{"loc": list(e.get("loc", ())), "msg": _message(e)} for e in errors]
    return JSONResponse({"detail": detail, "errno": "EINVAL", "errors": safe}, status_code=422)


async def _corrupt_samples(_request: Request, exc: Exception) -> JSONResponse:
    # Stored samples failed their checks: say which, never answer with a wrong rate.
    return JSONResponse({"detail": str(exc), "errno": "EBADMSG"}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(CorruptPacked, _corrupt_samples)
    app.add_exception_handler(RequestValidationError, _validation_error)
