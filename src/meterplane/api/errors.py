"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a 4xx status."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from meterplane.kit.errors import MeterplaneError


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error["loc"] if part != "body")
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MeterplaneError)
    async def _domain(_request: Request, exc: MeterplaneError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details), status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        code = (
            "malformed_json"
            if any(e["type"] == "json_invalid" for e in errors)
            else ("invalid_request")
        )
        status = 400 if code == "malformed_json" else 422
        fields = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body"),
                "type": e["type"],
                "message": e["msg"],
            }
            for e in errors
        ]
        return JSONResponse(error_body(code, _describe(errors), fields=fields), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "route_not_found", 405: "method_not_allowed", 401: "unauthorized"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
