"""Provider webhook endpoints, and Stripe-style signatures on what is sent to them.

``Meterplane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}.{body}" with the secret>``
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.notifications.models import (
    Channel,
    OutboxAttempt,
    OutboxMessage,
    WebhookEndpoint,
)

SIGNATURE_HEADER = "Meterplane-Signature"
WEBHOOK_EVENTS = (
    "invoice.draft_created",
    "invoice.issued",
    "invoice.paid",
    "invoice.payment_failed",
    "usage.rejected",
)
DEFAULT_TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None
    error: str | None


def post_event(
    client: httpx.Client, url: str, secret: str, body: bytes, *, event_id: str, now: datetime
) -> PostResult:
    """POST one signed event; any 2xx answer is a delivery, anything else is retried."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Meterplane-Webhooks/1",
        "Meterplane-Event-Id": event_id,
        SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
    }
    try:
        response = client.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return PostResult(False, None, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code, None)
    return PostResult(False, response.status_code, f"HTTP {response.status_code}")


def validate_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown or not events:
        raise InvalidInput(
            f"unknown webhook events {unknown}; choose from {list(WEBHOOK_EVENTS)}"
            if unknown
            else "give at least one event",
            code="invalid_events",
        )
    return sorted(set(events))


def create_endpoint(
    session: Session, provider_id: str, url: str, events: Sequence[str], *, now: datetime
) -> WebhookEndpoint:
    """Register an endpoint; its secret is readable on the returned object only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"'{url}' is not an http(s) URL", code="invalid_url")
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        provider_id=provider_id,
        url=url,
        events=validate_events(events),
        secret=f"whsec_{secrets.token_urlsafe(32)}",
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def list_endpoints(session: Session, provider_id: str) -> Sequence[WebhookEndpoint]:
    """The provider's live endpoints."""
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.provider_id == provider_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ).all()


def get_endpoint(session: Session, provider_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.provider_id == provider_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
    )
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", code="endpoint_not_found")
    return endpoint


def delete_endpoint(session: Session, provider_id: str, endpoint_id: str, *, now: datetime) -> None:
    """Stop sending to an endpoint; its delivery log stays."""
    get_endpoint(session, provider_id, endpoint_id).deleted_at = now


def list_deliveries(
    session: Session, provider_id: str, endpoint_id: str, *, limit: int = 100
) -> list[tuple[OutboxMessage, list[OutboxAttempt]]]:
    """The endpoint's deliveries, newest first, each with its attempts."""
    get_endpoint(session, provider_id, endpoint_id)
    messages = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.provider_id == provider_id,
            OutboxMessage.channel == Channel.webhook,
            OutboxMessage.endpoint_id == endpoint_id,
        )
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    ).all()
    attempts: dict[int, list[OutboxAttempt]] = {m.id: [] for m in messages}
    if messages:
        for attempt in session.scalars(
            select(OutboxAttempt)
            .where(OutboxAttempt.message_id.in_(list(attempts)))
            .order_by(OutboxAttempt.id)
        ):
            attempts[attempt.message_id].append(attempt)
    return [(m, attempts[m.id]) for m in messages]
