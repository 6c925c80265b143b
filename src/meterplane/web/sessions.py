"""Signed cookie sessions, flashed messages and the CSRF token kept in the session.

The session is a small JSON dict signed (not encrypted) with a key derived from
``METERPLANE_SECRET_KEY``: put ids in it, never secrets. The cookie is HttpOnly,
SameSite=Lax, Secure when the request came over https, and expires after
``METERPLANE_WEB_SESSION_MAX_AGE_SECONDS`` (the signature carries the time, so an old
cookie is refused even if a browser keeps it).
"""

import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from meterplane.web.config import get_web_settings, signing_key

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


def _serializer(cookie: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_key(f"session:{cookie}"), salt=cookie)


def load_session(request: Request, cookie: str) -> dict[str, Any]:
    """The session stored in ``cookie``, or a new empty one when absent, forged or expired."""
    raw = request.cookies.get(cookie)
    if raw:
        try:
            data = _serializer(cookie).loads(
                raw, max_age=get_web_settings().web_session_max_age_seconds
            )
        except BadSignature:
            data = None
        if isinstance(data, dict):
            return data
    return {}


def save_session(request: Request, response: Response, cookie: str, data: dict[str, Any]) -> None:
    """Write the session back (or delete the cookie when the session is empty)."""
    secure = request.url.scheme == "https"
    if not data:
        if cookie in request.cookies:
            response.delete_cookie(cookie, path="/", secure=secure, httponly=True, samesite="lax")
        return
    response.set_cookie(
        cookie,
        _serializer(cookie).dumps(data),
        max_age=get_web_settings().web_session_max_age_seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def session(request: Request) -> dict[str, Any]:
    """The current request's session (loaded by ``WebRoute``)."""
    data: dict[str, Any] = request.state.session
    return data


def reset_session(request: Request) -> dict[str, Any]:
    """Start a new session (on login and logout): old data and CSRF token are gone."""
    data = session(request)
    data.clear()
    data[CSRF_FIELD] = secrets.token_urlsafe(32)
    return data


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    data = session(request)
    token = data.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        data[CSRF_FIELD] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request whose form field or header does not carry the session's token."""
    expected = session(request).get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRejected()


def flash(request: Request, message: str, kind: str = "success") -> None:
    """Show ``message`` on the next page rendered for this session (kinds: success, error, info)."""
    session(request).setdefault("flashes", []).append([kind, message])


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    items = session(request).pop("flashes", [])
    return [(str(kind), str(text)) for kind, text in items]
