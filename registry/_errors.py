"""API errors: every error response is ``{"error": {"code", "message", "fix"}}``, never a trace.

:class:`ApiError` is a :class:`~cortex_trust.errors.CortexTrustError` (one exception root): its
``advice`` is what the wire calls ``fix``. A 4xx error is also an
:class:`~cortex_trust.errors.InputError` and a 503 an :class:`~cortex_trust.errors.UnavailableError`,
so the CLI renders a store error like any library error (exit 2, or 3). A library error that
reaches a route becomes an API error in one place, :func:`api_error`: an input error is a 422, an
unavailable one a 503, each with its message and advice.

Request bodies are parsed by :class:`BoundedJsonRoute` with
:func:`cortex_trust._json.load_json`: a body nested too deeply, with an over-long number, NaN
or Infinity, or that is not UTF-8 is the same 422 ``INVALID_REQUEST`` as malformed JSON, never
a 400 or a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from cortex_trust._json import MAX_DEPTH, MAX_INT_DIGITS, load_json
from cortex_trust.errors import CortexTrustError, InputError, ManifestError, UnavailableError

__all__ = [
    "ApiError",
    "BoundedJsonRoute",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "api_error",
    "error_response",
    "install_error_handlers",
]

_log = logging.getLogger("registry")


class ApiError(CortexTrustError):
    """An error with an HTTP status, a stable code, a message and the advice to fix it (sent as
    ``fix``). Raise one of the subclasses: the class is the status."""

    status = 400

    def __init__(self, code: str, message: str, *, advice: str = "",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, advice=advice)
        self.code = code
        self.details = details

    def __str__(self) -> str:
        return self.message


class Unauthorized(ApiError, InputError):
    """401: no token, or one this registry does not accept (unknown, revoked, expired)."""

    status = 401


class Forbidden(ApiError, InputError):
    """403: the token is valid but may not do this (role, namespace, someone else's review)."""

    status = 403


class NotFound(ApiError, InputError):
    """404: no such namespace, plugin, version, token, review or digest in this registry."""

    status = 404


class Conflict(ApiError, InputError):
    """409: the request contradicts what the registry holds (an immutable version, a revoked
    or owned digest, a digest that is not the version's)."""

    status = 409


class Invalid(ApiError, InputError):
    """422: the request parsed but its content is refused (a manifest, a bundle, an image
    reference, a name, a cursor), or the registry policy blocks the publish."""

    status = 422


class TooLarge(ApiError, InputError):
    """413: a body larger than the route accepts (a webhook delivery above its cap)."""

    status = 413


class Unavailable(ApiError, UnavailableError):
    """503: the database or the policy engine could not answer; nothing was changed."""

    status = 503


def api_error(error: CortexTrustError, code: str | None = None) -> ApiError:
    """``error`` as the API error a client receives: an :class:`ApiError` as it is; an
    :class:`~cortex_trust.errors.UnavailableError` as :class:`Unavailable` (``code`` or
    ``UNAVAILABLE``); any other library error, the caller's fault, as :class:`Invalid` (``code``
    or ``INVALID_INPUT``). The message and advice are the library's; a manifest error lists its
    problems in ``details``."""
    if isinstance(error, ApiError):
        return error
    details: dict[str, Any] | None = None
    if isinstance(error, ManifestError):
        details = {"problems": [str(p) for p in error.problems][:50]}
    if isinstance(error, UnavailableError):
        return Unavailable(code or "UNAVAILABLE", error.message, advice=error.advice or "",
                           details=details)
    return Invalid(code or "INVALID_INPUT", error.message, advice=error.advice or "",
                   details=details)


def error_response(status: int, code: str, message: str, fix: str = "",
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The JSON error document as a response."""
    body: dict[str, Any] = {"code": code, "message": message, "fix": fix}
    if details:
        body["details"] = details
    return Response(content=json.dumps({"error": body}), status_code=status,
                    media_type="application/json", headers=headers)


_STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "BODY_TOO_LARGE",
                 415: "UNSUPPORTED_MEDIA_TYPE", 422: "INVALID_REQUEST"}


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to the JSON error document (unexpected ones to a bare 500)."""

    @app.exception_handler(CortexTrustError)
    async def _api(_: Request, exc: CortexTrustError) -> Response:
        error = api_error(exc)
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return error_response(error.status, error.code, error.message, error.advice or "",
                              error.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        fix = "send only the documented fields, with the documented types (see /openapi.json)"
        for err in exc.errors()[:20]:
            if err.get("type") == "json_invalid":
                ctx = err.get("ctx") or {}
                problems.append(f"the body is not acceptable JSON: {ctx.get('error', 'invalid')}")
                fix = (f"send one UTF-8 JSON object; numbers of at most {MAX_INT_DIGITS} digits, "
                       f"no NaN or Infinity, nesting at most {MAX_DEPTH} levels deep")
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{loc or '(body)'}: {err.get('msg', 'invalid')}")
        return error_response(422, "INVALID_REQUEST", "; ".join(problems) or "invalid request",
                              fix)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
        return error_response(exc.status_code, code, str(exc.detail), "")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        # Logged for the operator; the client gets no trace and no internals.
        _log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "INTERNAL", "the registry failed to handle this request",
                              "retry later; if it persists, report it to the registry operator")


class _BoundedJsonRequest(Request):
    """A request whose JSON body is parsed within :func:`~cortex_trust._json.load_json`'s
    bounds; any refusal is a :class:`json.JSONDecodeError`, which FastAPI answers with
    :class:`RequestValidationError` (422)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = load_json(body)
            except UnicodeDecodeError as e:
                raise json.JSONDecodeError("the body is not UTF-8 text", "", e.start) from None
        return self._json


class BoundedJsonRoute(APIRoute):
    """An API route that parses JSON bodies with :class:`_BoundedJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, given a bounded-JSON request instead of the plain one."""
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(_BoundedJsonRequest(request.scope, request.receive))

        return bounded
