"""Errors a caller can act on: a machine-readable code, a human message and an HTTP status."""

from typing import Any


class MeterplaneError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(MeterplaneError):
    status_code = 422
    code = "invalid_input"


class NotFound(MeterplaneError):
    status_code = 404
    code = "not_found"


class Conflict(MeterplaneError):
    status_code = 409
    code = "conflict"


class Unauthorized(MeterplaneError):
    status_code = 401
    code = "unauthorized"


class Forbidden(MeterplaneError):
    status_code = 403
    code = "forbidden"
