"""Stripe Connect onboarding: a signed, expiring OAuth ``state`` and the connected account."""

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.kit.errors import InvalidInput
from meterplane.payments.errors import StripeNotConfigured, StripeNotConnected
from meterplane.payments.gateway import ConnectedAccount
from meterplane.payments.models import ProviderStripeAccount
from meterplane.tenancy.service import get_provider


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str | None, body: str) -> str:
    if not secret_key:
        raise StripeNotConfigured("set METERPLANE_SECRET_KEY to sign the Connect OAuth state")
    return _b64(hmac.new(secret_key.encode(), body.encode(), hashlib.sha256).digest())


def sign_state(secret_key: str | None, provider_id: str, *, expires_at: datetime) -> str:
    """``<payload>.<HMAC-SHA256>``: the provider and an expiry, readable only to check."""
    payload = {"p": provider_id, "exp": int(expires_at.timestamp()), "n": secrets.token_hex(8)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret_key, body)}"


def verify_state(secret_key: str | None, state: str, *, now: datetime) -> str:
    """The provider id of a genuine, unexpired state; anything else raises."""
    body, _, mac = state.partition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret_key, body)):
        raise InvalidInput("the OAuth state is not one Meterplane issued", code="invalid_state")
    try:
        payload = json.loads(_unb64(body))
        provider_id, expires = str(payload["p"]), int(payload["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("the OAuth state is malformed", code="invalid_state") from exc
    if now.timestamp() >= expires:
        raise InvalidInput("the OAuth state has expired; start again", code="expired_state")
    return provider_id


def start_onboarding(
    secret_key: str | None, provider_id: str, *, ttl_seconds: int, now: datetime
) -> tuple[str, datetime]:
    expires_at = now + timedelta(seconds=ttl_seconds)
    return sign_state(secret_key, provider_id, expires_at=expires_at), expires_at


def get_account(session: Session, provider_id: str) -> ProviderStripeAccount | None:
    """The provider's connected account, or None when never connected or disconnected."""
    account = session.get(ProviderStripeAccount, provider_id)
    if account is None or account.disconnected_at is not None:
        return None
    return account


def require_account(session: Session, provider_id: str) -> ProviderStripeAccount:
    account = get_account(session, provider_id)
    if account is None:
        raise StripeNotConnected(
            "connect a Stripe account (POST /v1/provider/stripe/connect) to collect payments"
        )
    return account


def record_connection(
    session: Session, provider_id: str, connected: ConnectedAccount, *, now: datetime
) -> ProviderStripeAccount:
    """Store (or replace) the provider's connected account."""
    get_provider(session, provider_id)
    account = session.get(ProviderStripeAccount, provider_id, with_for_update=True)
    before = None
    if account is None:
        account = ProviderStripeAccount(provider_id=provider_id)
        session.add(account)
    else:
        before = {"stripe_account_id": account.stripe_account_id}
    account.stripe_account_id = connected.stripe_account_id
    account.livemode = connected.livemode
    account.scope = connected.scope
    account.connected_at = now
    account.disconnected_at = None
    account.disconnect_reason = None
    audit.record(
        session,
        provider_id,
        actor="stripe:connect",
        action="stripe.connected",
        object_type="provider",
        object_id=provider_id,
        before=before,
        after={"stripe_account_id": connected.stripe_account_id},
        now=now,
    )
    session.flush()
    return account


def record_disconnection(
    session: Session, provider_id: str, *, actor: str, reason: str, now: datetime
) -> ProviderStripeAccount | None:
    """Forget the connection; nothing is charged on the account again."""
    account = get_account(session, provider_id)
    if account is None:
        return None
    account.disconnected_at = now
    account.disconnect_reason = reason
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="stripe.disconnected",
        object_type="provider",
        object_id=provider_id,
        before={"stripe_account_id": account.stripe_account_id},
        after=None,
        now=now,
        reason=reason,
    )
    return account


def providers_of_account(session: Session, stripe_account_id: str) -> list[ProviderStripeAccount]:
    return list(
        session.scalars(
            select(ProviderStripeAccount).where(
                ProviderStripeAccount.stripe_account_id == stripe_account_id,
                ProviderStripeAccount.disconnected_at.is_(None),
            )
        )
    )
