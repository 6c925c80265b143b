"""The Stripe edge: a small Protocol, its implementation with the official library, error mapping.

Everything Meterplane asks of Stripe goes through :class:`PaymentGateway`; Stripe's exceptions
never leave this module (``map_stripe_errors`` turns them into :mod:`meterplane.payments.errors`).
Calls on a connected account carry its id (the ``Stripe-Account`` header: direct charges).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from meterplane.payments.errors import (
    InvalidSignature,
    PaymentDeclined,
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
)
from meterplane.settings import Settings


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    status: str
    amount: int
    currency: str
    client_secret: str | None
    charge_id: str | None
    # From ``last_payment_error`` once a charge failed.
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class PaymentMethodInfo:
    id: str
    customer: str | None
    type: str
    brand: str | None
    last4: str | None


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    client_secret: str
    status: str


@dataclass(frozen=True)
class RefundInfo:
    id: str
    status: str
    amount: int


@dataclass(frozen=True)
class ConnectedAccount:
    stripe_account_id: str
    livemode: bool
    scope: str | None


class PaymentGateway(Protocol):
    publishable_key: str
    js_url: str

    def authorize_url(self, *, state: str, redirect_uri: str | None) -> str: ...

    def exchange_code(self, code: str) -> ConnectedAccount: ...

    def deauthorize(self, account: str) -> None: ...

    def create_customer(
        self, account: str, *, name: str, email: str, metadata: dict[str, str], idempotency_key: str
    ) -> str: ...

    def create_setup_intent(
        self, account: str, *, customer: str, metadata: dict[str, str]
    ) -> SetupIntentInfo: ...

    def retrieve_payment_method(self, account: str, payment_method: str) -> PaymentMethodInfo: ...

    def attach_payment_method(
        self, account: str, payment_method: str, *, customer: str
    ) -> PaymentMethodInfo: ...

    def set_default_payment_method(
        self, account: str, *, customer: str, payment_method: str
    ) -> None: ...

    def create_payment_intent(
        self,
        account: str,
        *,
        amount: int,
        currency: str,
        customer: str,
        payment_method: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> PaymentIntentInfo: ...

    def confirm_payment_intent(
        self, account: str, payment_intent: str, *, off_session: bool, idempotency_key: str
    ) -> PaymentIntentInfo: ...

    def retrieve_payment_intent(self, account: str, payment_intent: str) -> PaymentIntentInfo: ...

    def refund(
        self, account: str, *, payment_intent: str, amount: int, idempotency_key: str
    ) -> RefundInfo: ...

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]: ...


@contextmanager
def map_stripe_errors() -> Iterator[None]:
    """Turn the library's exceptions into our own error tree at the boundary."""
    try:
        yield
    except stripe.CardError as exc:
        error = exc.error
        raise PaymentDeclined(
            exc.user_message or str(exc),
            code=exc.code or "card_declined",
            decline_code=getattr(error, "decline_code", None) if error else None,
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable(f"Stripe is unreachable: {exc.user_message or exc}") from exc
    except stripe.AuthenticationError as exc:
        raise StripeNotConfigured(
            f"Stripe refused the platform key: {exc.user_message or exc}",
            code="stripe_auth_failed",
        ) from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500:
            raise StripeUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
        raise StripeRejected(
            f"Stripe refused the request: {exc.user_message or exc}",
            stripe_code=exc.code,
            http_status=status or None,
        ) from exc


def _payment_intent(obj: Any) -> PaymentIntentInfo:
    data: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return payment_intent_from_dict(data)


def payment_intent_from_dict(data: dict[str, Any]) -> PaymentIntentInfo:
    """Read a PaymentIntent from an API response or from a webhook event's ``data.object``."""
    error = data.get("last_payment_error") or {}
    charge = data.get("latest_charge")
    if isinstance(charge, dict):
        charge = charge.get("id")
    return PaymentIntentInfo(
        id=data["id"],
        status=data["status"],
        amount=int(data["amount"]),
        currency=data["currency"],
        client_secret=data.get("client_secret"),
        charge_id=charge or error.get("charge"),
        failure_code=error.get("code"),
        decline_code=error.get("decline_code"),
        failure_message=error.get("message"),
    )


class StripeGateway:
    """:class:`PaymentGateway` with the official ``stripe`` library and the platform's keys."""

    def __init__(self, settings: Settings) -> None:
        if not settings.stripe_secret_key:
            raise StripeNotConfigured("set METERPLANE_STRIPE_SECRET_KEY to collect payments")
        self.settings = settings
        self.publishable_key = settings.stripe_publishable_key or ""
        self.js_url = settings.stripe_js_url
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            client_id=settings.stripe_client_id or None,
            base_addresses={
                "api": settings.stripe_api_base,
                "connect": settings.stripe_connect_base,
            },
            max_network_retries=0,
        )

    @staticmethod
    def _on(account: str, idempotency_key: str | None = None) -> Any:
        options: dict[str, str] = {"stripe_account": account}
        if idempotency_key is not None:
            options["idempotency_key"] = idempotency_key
        return options

    def authorize_url(self, *, state: str, redirect_uri: str | None) -> str:
        if not self.settings.stripe_client_id:
            raise StripeNotConfigured("set METERPLANE_STRIPE_CLIENT_ID to connect Stripe accounts")
        params: dict[str, str] = {"scope": "read_write", "state": state}
        if redirect_uri:
            params["redirect_uri"] = redirect_uri
        with map_stripe_errors():
            return self.client.oauth.authorize_url(params=params)  # type: ignore[arg-type]

    def exchange_code(self, code: str) -> ConnectedAccount:
        with map_stripe_errors():
            token = self.client.oauth.token(
                params={"grant_type": "authorization_code", "code": code}
            )
        data = token.to_dict()
        return ConnectedAccount(
            stripe_account_id=str(data["stripe_user_id"]),
            livemode=bool(data.get("livemode", False)),
            scope=data.get("scope"),
        )

    def deauthorize(self, account: str) -> None:
        with map_stripe_errors():
            self.client.oauth.deauthorize(params={"stripe_user_id": account})

    def create_customer(
        self, account: str, *, name: str, email: str, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        with map_stripe_errors():
            customer = self.client.v1.customers.create(
                params={"name": name, "email": email, "metadata": metadata},
                options=self._on(account, idempotency_key),
            )
        return str(customer.id)

    def create_setup_intent(
        self, account: str, *, customer: str, metadata: dict[str, str]
    ) -> SetupIntentInfo:
        with map_stripe_errors():
            intent = self.client.v1.setup_intents.create(
                params={"customer": customer, "usage": "off_session", "metadata": metadata},
                options=self._on(account),
            )
        return SetupIntentInfo(intent.id, str(intent.client_secret), intent.status)

    def _payment_method(self, obj: Any) -> PaymentMethodInfo:
        data: dict[str, Any] = obj.to_dict()
        card = data.get("card") or {}
        customer = data.get("customer")
        return PaymentMethodInfo(
            id=data["id"],
            customer=customer if isinstance(customer, str) or customer is None else customer["id"],
            type=data.get("type") or "card",
            brand=card.get("brand"),
            last4=card.get("last4"),
        )

    def retrieve_payment_method(self, account: str, payment_method: str) -> PaymentMethodInfo:
        with map_stripe_errors():
            obj = self.client.v1.payment_methods.retrieve(payment_method, options=self._on(account))
        return self._payment_method(obj)

    def attach_payment_method(
        self, account: str, payment_method: str, *, customer: str
    ) -> PaymentMethodInfo:
        with map_stripe_errors():
            obj = self.client.v1.payment_methods.attach(
                payment_method, params={"customer": customer}, options=self._on(account)
            )
        return self._payment_method(obj)

    def set_default_payment_method(
        self, account: str, *, customer: str, payment_method: str
    ) -> None:
        with map_stripe_errors():
            self.client.v1.customers.update(
                customer,
                params={"invoice_settings": {"default_payment_method": payment_method}},
                options=self._on(account),
            )

    def create_payment_intent(
        self,
        account: str,
        *,
        amount: int,
        currency: str,
        customer: str,
        payment_method: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> PaymentIntentInfo:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer,
            "metadata": metadata,
        }
        if payment_method is not None:
            params["payment_method"] = payment_method
        with map_stripe_errors():
            intent = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options=self._on(account, idempotency_key),
            )
        return _payment_intent(intent)

    def confirm_payment_intent(
        self, account: str, payment_intent: str, *, off_session: bool, idempotency_key: str
    ) -> PaymentIntentInfo:
        params: dict[str, Any] = {}
        # Real Stripe wants ``off_session`` for a charge without the customer present;
        # localstripe rejects the parameter, hence the setting.
        if off_session and self.settings.stripe_send_off_session:
            params["off_session"] = True
        with map_stripe_errors():
            intent = self.client.v1.payment_intents.confirm(
                payment_intent,
                params=params,  # type: ignore[arg-type]
                options=self._on(account, idempotency_key),
            )
        return _payment_intent(intent)

    def retrieve_payment_intent(self, account: str, payment_intent: str) -> PaymentIntentInfo:
        with map_stripe_errors():
            intent = self.client.v1.payment_intents.retrieve(
                payment_intent, options=self._on(account)
            )
        return _payment_intent(intent)

    def refund(
        self, account: str, *, payment_intent: str, amount: int, idempotency_key: str
    ) -> RefundInfo:
        with map_stripe_errors():
            refund = self.client.v1.refunds.create(
                params={"payment_intent": payment_intent, "amount": amount},
                options=self._on(account, idempotency_key),
            )
        return RefundInfo(refund.id, str(refund.status), int(refund.amount))

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        secret = self.settings.stripe_webhook_secret
        if not secret:
            raise StripeNotConfigured("set METERPLANE_STRIPE_WEBHOOK_SECRET to receive webhooks")
        try:
            stripe.Webhook.construct_event(payload, signature, secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidSignature("the Stripe-Signature header does not verify") from exc
        event: dict[str, Any] = json.loads(payload)
        return event
