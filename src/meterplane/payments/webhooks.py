"""The webhook inbox: verified events are stored first by id, then processed once each."""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.db import transaction
from meterplane.kit.errors import InvalidInput
from meterplane.payments import connect, service
from meterplane.payments.gateway import payment_intent_from_dict
from meterplane.payments.models import PaymentAttempt, StripeEvent
from meterplane.payments.service import Outcome

log = logging.getLogger("meterplane.payments")

PAYMENT_INTENT_EVENTS = frozenset(
    {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"}
)


def store_event(session: Session, event: dict[str, Any], *, now: datetime) -> bool:
    """Keep a verified event; False when its id was stored before (a replay: nothing to do)."""
    try:
        values = {
            "id": str(event["id"]),
            "type": str(event["type"]),
            "stripe_account_id": event.get("account"),
            "stripe_created": int(event.get("created") or 0),
            "payload": event,
            "received_at": now,
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("the event has no id or type", code="invalid_event") from exc
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted = session.scalar(
        insert(StripeEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.id)
    )
    return inserted is not None


def _find_attempt(session: Session, intent: dict[str, Any]) -> PaymentAttempt | None:
    """By PaymentIntent id, or by the attempt id in its metadata (the id may not be stored yet
    when a crash came between the Stripe call and our commit)."""
    attempt_id = (intent.get("metadata") or {}).get("meterplane_attempt_id")
    return session.scalar(
        select(PaymentAttempt).where(
            or_(
                PaymentAttempt.stripe_payment_intent_id == intent.get("id"),
                PaymentAttempt.id == (attempt_id or ""),
            )
        )
    )


def _handle(session: Session, event: StripeEvent, *, now: datetime) -> tuple[str, Outcome | None]:
    payload = event.payload
    if event.type in PAYMENT_INTENT_EVENTS:
        data = payload.get("data", {}).get("object", {})
        attempt = _find_attempt(session, data)
        if attempt is None:
            return "unknown_payment_intent", None
        # Events of one connected account never touch another account's payments.
        if event.stripe_account_id != attempt.stripe_account_id:
            return "account_mismatch", None
        intent = payment_intent_from_dict(data)
        if event.type == "payment_intent.succeeded" and intent.status != "succeeded":
            return "inconsistent", None
        outcome = service.apply_intent(
            session, attempt, intent, source=f"webhook:{event.id}", now=now
        )
        return ("applied" if outcome else "no_change"), outcome
    if event.type == "account.application.deauthorized":
        if not event.stripe_account_id:
            return "no_account", None
        for account in connect.providers_of_account(session, event.stripe_account_id):
            connect.record_disconnection(
                session,
                account.provider_id,
                actor="stripe:webhook",
                reason="the application was deauthorized in Stripe",
                now=now,
            )
        return "disconnected", None
    return "ignored", None


def process_pending(
    factory: sessionmaker[Session], *, now: datetime, limit: int = 500
) -> list[tuple[str, str, Outcome | None]]:
    """Handle stored events in arrival order, each in its own transaction, each once."""
    with transaction(factory) as session:
        ids = list(
            session.scalars(
                select(StripeEvent.id)
                .where(StripeEvent.processed_at.is_(None))
                .order_by(StripeEvent.received_at, StripeEvent.stripe_created, StripeEvent.id)
                .limit(limit)
            )
        )
    results: list[tuple[str, str, Outcome | None]] = []
    for event_id in ids:
        with transaction(factory) as session:
            event = session.scalar(
                select(StripeEvent)
                .where(StripeEvent.id == event_id, StripeEvent.processed_at.is_(None))
                .with_for_update(skip_locked=True)
            )
            if event is None:
                continue  # another worker has it
            result, outcome = _handle(session, event, now=now)
            event.processed_at = now
            event.outcome = result
            log.info("stripe event %s (%s): %s", event.id, event.type, result)
            results.append((event_id, result, outcome))
    return results
