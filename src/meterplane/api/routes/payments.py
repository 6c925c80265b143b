"""Stripe Connect onboarding, webhooks, saved cards, portal payments, refunds, history."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from meterplane.api.deps import Admin, AppSettings, Factory, Now, unit_of_work
from meterplane.customers import service as customers
from meterplane.kit.errors import InvalidInput
from meterplane.payments import collection, connect, service, webhooks
from meterplane.payments.gateway import PaymentGateway, StripeGateway
from meterplane.payments.models import ProviderStripeAccount
from meterplane.payments.schemas import (
    ConnectionOut,
    ConnectOut,
    DefaultPaymentMethodIn,
    PaymentSettingsIn,
    PaymentSettingsOut,
    RefundIn,
)

router = APIRouter(prefix="/v1", tags=["payments"])


def gateway(request: Request) -> PaymentGateway:
    """The app's Stripe gateway, built from the settings on first use (tests may set it)."""
    state = request.app.state
    if getattr(state, "payment_gateway", None) is None:
        state.payment_gateway = StripeGateway(state.settings)
    found: PaymentGateway = state.payment_gateway
    return found


Gateway = Annotated[PaymentGateway, Depends(gateway)]


def _connection(account: Any) -> ConnectionOut:
    if account is None:
        return ConnectionOut(
            connected=False,
            can_charge=False,
            reason="no Stripe account is connected: POST /v1/provider/stripe/connect",
        )
    live = account.disconnected_at is None
    return ConnectionOut(
        connected=live,
        stripe_account_id=account.stripe_account_id,
        connected_at=account.connected_at,
        disconnected_at=account.disconnected_at,
        disconnect_reason=account.disconnect_reason,
        can_charge=live,
        reason=None if live else f"disconnected: {account.disconnect_reason}",
    )


@router.post("/provider/stripe/connect", tags=["provider"])
def start_connect(caller: Admin, settings: AppSettings, gw: Gateway, now: Now) -> ConnectOut:
    """The Stripe OAuth URL to send the provider to; its ``state`` expires."""
    state, expires_at = connect.start_onboarding(
        settings.secret_key,
        caller.provider_id,
        ttl_seconds=settings.stripe_connect_state_ttl_seconds,
        now=now,
    )
    url = gw.authorize_url(state=state, redirect_uri=settings.stripe_connect_redirect_uri)
    return ConnectOut(url=url, state=state, expires_at=expires_at)


@router.get("/provider/stripe/connect", tags=["provider"])
def connection(caller: Admin, factory: Factory) -> ConnectionOut:
    """Whether the provider can charge cards, and if not, why."""
    with unit_of_work(factory) as session:
        return _connection(session.get(ProviderStripeAccount, caller.provider_id))


@router.delete("/provider/stripe/connect", tags=["provider"])
def disconnect(caller: Admin, factory: Factory, gw: Gateway, now: Now) -> ConnectionOut:
    """Revoke Meterplane's access to the account and stop charging on it."""
    with unit_of_work(factory) as session:
        account = connect.require_account(session, caller.provider_id)
        stripe_account_id = account.stripe_account_id
    gw.deauthorize(stripe_account_id)
    with unit_of_work(factory) as session:
        return _connection(
            connect.record_disconnection(
                session,
                caller.provider_id,
                actor=caller.actor,
                reason="disconnected by the provider",
                now=now,
            )
        )


@router.get("/stripe/connect/callback", tags=["provider"], response_model=ConnectionOut)
def connect_callback(
    request: Request,
    factory: Factory,
    settings: AppSettings,
    gw: Gateway,
    now: Now,
    state: Annotated[str, Query(max_length=2000)],
    code: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Any:
    """Where Stripe sends the provider back: the state is checked, the code exchanged.

    A browser (the console's "Connect" button) is sent back to the console's payments page.
    """
    provider_id = connect.verify_state(settings.secret_key, state, now=now)
    if error or not code:
        raise InvalidInput(
            f"Stripe did not connect the account: {error_description or error or 'no code'}",
            code="stripe_connect_refused",
        )
    connected = gw.exchange_code(code)
    with unit_of_work(factory) as session:
        result = _connection(connect.record_connection(session, provider_id, connected, now=now))
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/console/payments", status_code=303)
    return result


@router.post("/stripe/webhooks", tags=["payments"])
async def stripe_webhook(
    request: Request, factory: Factory, gw: Gateway, now: Now
) -> dict[str, Any]:
    """Verified, then stored by event id; the worker processes it (replays are no-ops)."""
    payload = await request.body()
    event = gw.verify_event(payload, request.headers.get("stripe-signature"))

    def store() -> bool:
        with unit_of_work(factory) as session:
            return webhooks.store_event(session, event, now=now)

    stored = await run_in_threadpool(store)
    return {"received": True, "duplicate": not stored}


@router.get("/provider/payment-settings", tags=["provider"])
def get_payment_settings(caller: Admin, factory: Factory) -> PaymentSettingsOut:
    with unit_of_work(factory) as session:
        return PaymentSettingsOut(**service.payment_settings(session, caller.provider_id))


@router.patch("/provider/payment-settings", tags=["provider"])
def update_payment_settings(
    body: PaymentSettingsIn, caller: Admin, factory: Factory, now: Now
) -> PaymentSettingsOut:
    """``retry_schedule_days``: days to wait after each failed charge (default 3, 5, 7)."""
    with unit_of_work(factory) as session:
        return PaymentSettingsOut(
            **service.update_payment_settings(
                session,
                caller.provider_id,
                retry_schedule_days=body.retry_schedule_days,
                reconcile_after_minutes=body.reconcile_after_minutes,
                actor=caller.actor,
                now=now,
            )
        )


@router.post("/customers/{customer_id}/setup-intents", status_code=201, tags=["customers"])
def create_setup_intent(
    customer_id: str, caller: Admin, factory: Factory, gw: Gateway, now: Now
) -> dict[str, str]:
    """A SetupIntent to save a card with Stripe.js (on the provider's connected account)."""
    return collection.create_setup_intent(factory, gw, caller.provider_id, customer_id, now=now)


@router.post("/customers/{customer_id}/payment-methods/default", tags=["customers"])
def set_default_payment_method(
    customer_id: str,
    body: DefaultPaymentMethodIn,
    caller: Admin,
    factory: Factory,
    gw: Gateway,
    now: Now,
) -> dict[str, Any]:
    """Make a saved card the default: charged for new invoices, and what quotas check."""
    with unit_of_work(factory) as session:
        customers.get_customer(session, caller.provider_id, customer_id)
    customer = collection.set_default_payment_method(
        factory,
        gw,
        caller.provider_id,
        customer_id,
        body.payment_method,
        actor=caller.actor,
        now=now,
    )
    return {"customer_id": customer.id, "default_payment_method": customer.default_payment_method}


@router.post("/invoices/{invoice_id}/pay", tags=["invoices"])
def pay_invoice(
    invoice_id: str, caller: Admin, factory: Factory, gw: Gateway, now: Now
) -> dict[str, str]:
    """A PaymentIntent client secret for the portal to confirm with a card (Stripe.js)."""
    return collection.pay_in_portal(factory, gw, caller.provider_id, invoice_id, now=now).as_dict()


@router.post("/invoices/{invoice_id}/refunds", status_code=201, tags=["invoices"])
def refund_invoice(
    invoice_id: str,
    caller: Admin,
    factory: Factory,
    gw: Gateway,
    now: Now,
    body: RefundIn | None = None,
) -> dict[str, Any]:
    """Refund a paid invoice, fully (no amount) or partly."""
    refund = collection.refund_invoice(
        factory,
        gw,
        caller.provider_id,
        invoice_id,
        amount=body.amount if body else None,
        reason=body.reason if body else None,
        actor=caller.actor,
        now=now,
    )
    with unit_of_work(factory) as session:
        history = service.payment_history(session, caller.provider_id, invoice_id)
    refunds: list[dict[str, Any]] = history["refunds"]
    return next(r for r in refunds if r["id"] == refund.id)


@router.get("/invoices/{invoice_id}/payments", tags=["invoices"])
def payment_history(invoice_id: str, caller: Admin, factory: Factory) -> dict[str, Any]:
    """Attempts, amounts, outcomes, Stripe ids and refunds of the invoice."""
    with unit_of_work(factory) as session:
        history: dict[str, Any] = service.payment_history(session, caller.provider_id, invoice_id)
        return history
