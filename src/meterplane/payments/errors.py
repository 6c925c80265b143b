"""Payment errors a caller can act on; every Stripe error is mapped to one of these."""

from meterplane.kit.errors import Conflict, MeterplaneError


class PaymentError(MeterplaneError):
    status_code = 502
    code = "payment_error"


class StripeNotConnected(Conflict):
    code = "stripe_not_connected"


class StripeNotConfigured(MeterplaneError):
    status_code = 503
    code = "stripe_not_configured"


class StripeUnavailable(PaymentError):
    """Network trouble, rate limits or a Stripe-side error: try again later."""

    status_code = 503
    code = "stripe_unavailable"


class StripeRejected(PaymentError):
    """Stripe refused the request (invalid parameters, missing object, no permission)."""

    code = "stripe_request_failed"


class PaymentDeclined(PaymentError):
    status_code = 402
    code = "card_declined"


class InvalidSignature(MeterplaneError):
    status_code = 400
    code = "invalid_signature"
