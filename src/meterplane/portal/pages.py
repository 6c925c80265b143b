"""The customer portal in the browser: ``/portal/{provider_id}/…``, one customer per session.

Ways in: the one-time link the provider's app mints (``/enter/{token}``, used on opening) and
the emailed magic link (``/magic/{token}``, used by a button on the page it opens, so a mail
scanner that fetches links cannot spend it). The session cookie (``mp_portal``, signed,
HttpOnly, SameSite=Lax) names one provider and one customer; every query filters by both.
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from meterplane.api.deps import AppSettings, Factory, Now, unit_of_work
from meterplane.api.routes.payments import gateway as app_gateway
from meterplane.customers.service import get_customer
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.pdf import load_document, render_document
from meterplane.invoicing.states import OPEN_FOR_PAYMENT
from meterplane.kit.errors import MeterplaneError, NotFound
from meterplane.payments import collection
from meterplane.payments.connect import get_account
from meterplane.payments.gateway import PaymentGateway, PaymentMethodInfo
from meterplane.portal import service, views
from meterplane.portal.models import TokenKind
from meterplane.portal.payments import pay_with_saved_card
from meterplane.settings import Settings
from meterplane.web.routing import DEFAULT_CSP, Redirect, WebRoute, render
from meterplane.web.sessions import reset_session, session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_FILES = {"portal.js": "text/javascript", "portal.css": "text/css"}


class PortalRoute(WebRoute):
    session_cookie = "mp_portal"
    template_folders = (HERE / "templates",)
    brand = "Billing portal"
    home_path = "/portal"


router = APIRouter(prefix="/portal", route_class=PortalRoute, include_in_schema=False)
assets = APIRouter(prefix="/portal", include_in_schema=False)


@dataclass(frozen=True)
class Viewer:
    provider_id: str
    provider_name: str
    support_email: str | None
    customer_id: str
    customer_name: str


def _viewer(request: Request, provider_id: str, factory: Factory) -> Viewer:
    """The signed-in customer of this provider's portal, or a redirect to its sign-in page."""
    data = session(request)
    if data.get("provider_id") != provider_id or not isinstance(data.get("customer_id"), str):
        raise Redirect(f"/portal/{provider_id}/sign-in")
    with unit_of_work(factory) as db:
        provider = service.get_provider(db, provider_id)
        try:
            customer = get_customer(db, provider_id, data["customer_id"])
        except NotFound:
            data.clear()
            raise Redirect(f"/portal/{provider_id}/sign-in") from None
        return Viewer(
            provider.id, provider.name, provider.support_email, customer.id, customer.name
        )


CurrentViewer = Annotated[Viewer, Depends(_viewer)]
Gateway = Annotated[PaymentGateway, Depends(app_gateway)]


def page(request: Request, name: str, viewer: Viewer | None, **context: Any) -> Response:
    """Render a portal page with the provider's name as the brand and the portal's nav."""
    base: dict[str, Any] = {"viewer": viewer, "stripe_origin": None}
    if viewer is not None:
        base |= {
            "brand": viewer.provider_name,
            "home_path": f"/portal/{viewer.provider_id}",
            "root": f"/portal/{viewer.provider_id}",
        }
    return render(request, name, base | context)


def _open(request: Request, provider_id: str, factory: Factory) -> dict[str, Any]:
    """Context of the pages shown before sign-in: the provider's name, its portal root."""
    with unit_of_work(factory) as db:
        provider = service.get_provider(db, provider_id)
        return {
            "brand": provider.name,
            "home_path": f"/portal/{provider.id}/sign-in",
            "root": f"/portal/{provider.id}",
            "provider_name": provider.name,
            "support_email": provider.support_email,
            "viewer": None,
            "stripe_origin": None,
        }


def _sign_in(request: Request, provider_id: str, customer_id: str) -> None:
    data = reset_session(request)  # a fresh session and CSRF token: no fixation
    data["provider_id"] = provider_id
    data["customer_id"] = customer_id


# Static files of the portal (its script and a few styles on top of web/static/app.css) ---


@assets.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFound("no such file")
    return FileResponse(
        STATIC / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=300"},
    )


# Ways in ----------------------------------------------------------------------------------


@router.get("/{provider_id}/enter/{token}")
def enter(request: Request, provider_id: str, token: str, factory: Factory, now: Now) -> Response:
    """The provider's one-time link: used on opening, then the customer is signed in."""
    try:
        with unit_of_work(factory) as db:
            row = service.redeem(db, provider_id, token, kind=TokenKind.link, now=now)
            customer_id = row.customer_id
    except service.LinkRefused as refused:
        context = _open(request, provider_id, factory)
        status = 404 if refused.reason == "not valid" else 410
        response = render(request, "link_refused.html", context | {"reason": refused.reason})
        response.status_code = status
        return response
    _sign_in(request, provider_id, customer_id)
    raise Redirect(f"/portal/{provider_id}")


@router.get("/{provider_id}/magic/{token}")
def magic(request: Request, provider_id: str, token: str, factory: Factory, now: Now) -> Response:
    """The emailed link opens a page with a button; the button spends the link."""
    context = _open(request, provider_id, factory)
    with unit_of_work(factory) as db:
        state = service.peek(db, provider_id, token, kind=TokenKind.email, now=now)
    if state != "ok":
        reason = {"used": "already used", "expired": "expired"}.get(state, "not valid")
        response = render(request, "link_refused.html", context | {"reason": reason})
        response.status_code = 404 if reason == "not valid" else 410
        return response
    return render(request, "magic.html", context | {"token": token})


@router.post("/{provider_id}/magic/{token}")
def magic_use(
    request: Request, provider_id: str, token: str, factory: Factory, now: Now
) -> Response:
    try:
        with unit_of_work(factory) as db:
            row = service.redeem(db, provider_id, token, kind=TokenKind.email, now=now)
            customer_id = row.customer_id
    except service.LinkRefused as refused:
        context = _open(request, provider_id, factory)
        response = render(request, "link_refused.html", context | {"reason": refused.reason})
        response.status_code = 410
        return response
    _sign_in(request, provider_id, customer_id)
    raise Redirect(f"/portal/{provider_id}")


@router.get("/{provider_id}/sign-in")
def sign_in(request: Request, provider_id: str, factory: Factory) -> Response:
    data = session(request)
    if data.get("provider_id") == provider_id and data.get("customer_id"):
        raise Redirect(f"/portal/{provider_id}")
    return render(request, "sign_in.html", _open(request, provider_id, factory) | {"sent": None})


@router.post("/{provider_id}/sign-in")
def sign_in_send(
    request: Request,
    provider_id: str,
    factory: Factory,
    settings: AppSettings,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Email a magic link if the address is known; the answer is the same either way."""
    context = _open(request, provider_id, factory)
    with unit_of_work(factory) as db:
        service.request_magic_link(
            db, provider_id, email, base_url=settings.portal_base_url, now=now
        )
    return render(request, "sign_in.html", context | {"sent": email.strip()})


@router.post("/{provider_id}/sign-out")
def sign_out(request: Request, provider_id: str) -> Response:
    session(request).clear()
    raise Redirect(f"/portal/{provider_id}/sign-in?signed_out=1")


# Links in emails that predate provider-scoped URLs: /portal/invoices/{id}, /portal/payment-method


@router.get("/invoices/{invoice_id}")
def invoice_from_email(request: Request, invoice_id: str, factory: Factory) -> Response:
    with unit_of_work(factory) as db:
        invoice = db.get(Invoice, invoice_id)
        provider_id = invoice.provider_id if invoice is not None else None
    if provider_id is None:
        raise NotFound("There is no such invoice. Check the link in your email.")
    raise Redirect(f"/portal/{provider_id}/invoices/{invoice_id}")


@router.get("/payment-method")
def payment_method_from_email(request: Request) -> Response:
    provider_id = session(request).get("provider_id")
    if not isinstance(provider_id, str):
        raise NotFound(
            "Open the billing portal from your provider's app or from the link in an invoice "
            "email, then choose Payment method."
        )
    raise Redirect(f"/portal/{provider_id}/payment-method")


# Usage ------------------------------------------------------------------------------------


@router.get("/{provider_id}")
def home(request: Request, viewer: CurrentViewer, factory: Factory, now: Now) -> Response:
    """Current usage: charts per dimension, the month-to-date estimate, a row per instance."""
    with unit_of_work(factory) as db:
        estimate = views.month_estimate(db, viewer.provider_id, viewer.customer_id, now=now)
        invoices = views.customer_invoices(db, viewer.provider_id, viewer.customer_id)
        unpaid = views.open_invoices(invoices)
    due: dict[str, Decimal] = {}
    for invoice in unpaid:
        due[invoice.currency] = due.get(invoice.currency, Decimal(0)) + invoice.total
    return page(
        request,
        "usage.html",
        viewer,
        estimate=estimate,
        unpaid=unpaid,
        due=sorted(due.items()),
        now=now,
    )


@router.get("/{provider_id}/usage.json")
def usage_json(
    viewer: CurrentViewer,
    factory: Factory,
    now: Now,
    range: Annotated[views.Range, Query()] = "48h",
) -> JSONResponse:
    """The charts' data, from the same usage report as ``GET /v1/usage``."""
    with unit_of_work(factory) as db:
        series = views.usage_series(db, viewer.provider_id, viewer.customer_id, range, now=now)
    return JSONResponse(series, headers={"Cache-Control": "private, no-store"})


# Invoices ---------------------------------------------------------------------------------


@router.get("/{provider_id}/invoices")
def invoice_list(request: Request, viewer: CurrentViewer, factory: Factory) -> Response:
    with unit_of_work(factory) as db:
        invoices = views.customer_invoices(db, viewer.provider_id, viewer.customer_id)
    return page(request, "invoices.html", viewer, invoices=invoices, payable=OPEN_FOR_PAYMENT)


@router.get("/{provider_id}/invoices/{invoice_id}")
def invoice_detail(
    request: Request,
    invoice_id: str,
    viewer: CurrentViewer,
    factory: Factory,
    settings: AppSettings,
    paid: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    with unit_of_work(factory) as db:
        invoice = views.visible_invoice(db, viewer.provider_id, viewer.customer_id, invoice_id)
        customer = get_customer(db, viewer.provider_id, viewer.customer_id)
        connected = get_account(db, viewer.provider_id) is not None
        lines, instances = list(invoice.lines), list(invoice.instance_lines)
        names = views.dimension_names(db, viewer.provider_id)
        default_method = customer.default_payment_method
    payable = invoice.status in OPEN_FOR_PAYMENT and invoice.total > 0
    card = None
    if payable and connected and default_method:
        card = _card(request, viewer, default_method)
    stripe = _stripe_context(request, settings, viewer) if payable and connected else {}
    response = page(
        request,
        "invoice.html",
        viewer,
        invoice=invoice,
        lines=lines,
        instances=instances,
        payable=payable,
        connected=connected,
        card=card,
        just_paid=paid,
        names=names,
        **stripe,
    )
    return _with_stripe_csp(response, stripe)


@router.get("/{provider_id}/invoices/{invoice_id}/pdf")
def invoice_pdf(invoice_id: str, viewer: CurrentViewer, factory: Factory) -> Response:
    with unit_of_work(factory) as db:
        views.visible_invoice(db, viewer.provider_id, viewer.customer_id, invoice_id)
        document = load_document(db, viewer.provider_id, invoice_id)
    return Response(
        content=render_document(document),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/{provider_id}/invoices/{invoice_id}/pay")
def invoice_pay(
    invoice_id: str, viewer: CurrentViewer, factory: Factory, gw: Gateway, now: Now
) -> JSONResponse:
    """Charge the saved card; ``requires_action`` hands the client secret to Stripe.js."""
    try:
        charge = pay_with_saved_card(
            factory, gw, viewer.provider_id, viewer.customer_id, invoice_id, now=now
        )
    except MeterplaneError as error:
        return JSONResponse({"error": error.message}, status_code=409)
    return JSONResponse(
        {
            "status": charge.status,
            "client_secret": charge.client_secret,
            "error": charge.error,
            "next": f"/portal/{viewer.provider_id}/invoices/{invoice_id}?paid=1",
        }
    )


# Payment method ---------------------------------------------------------------------------


def _card(request: Request, viewer: Viewer, payment_method: str) -> PaymentMethodInfo | None:
    """The saved card as Stripe describes it (brand, last 4), or None when Stripe is away."""
    try:
        gw = app_gateway(request)
        with unit_of_work(request.app.state.session_factory) as db:
            account = get_account(db, viewer.provider_id)
            if account is None:
                return None
            stripe_account = account.stripe_account_id
        return gw.retrieve_payment_method(stripe_account, payment_method)
    except MeterplaneError:
        return None


def _stripe_context(request: Request, settings: Settings, viewer: Viewer) -> dict[str, Any]:
    with unit_of_work(request.app.state.session_factory) as db:
        account = get_account(db, viewer.provider_id)
    if account is None or not settings.stripe_publishable_key:
        return {}
    js = settings.stripe_js_url
    parts = urlsplit(js)
    origin = f"{parts.scheme}://{parts.netloc}"
    return {
        "stripe_js_url": js,
        "stripe_origin": origin,
        "stripe_key": settings.stripe_publishable_key,
        "stripe_account": account.stripe_account_id,
    }


def _with_stripe_csp(response: Response, stripe: dict[str, Any]) -> Response:
    """Let the page load Stripe.js, its frames and its API calls (real Stripe or a stand-in)."""
    origin = stripe.get("stripe_origin")
    if origin:
        extra = [origin]
        if origin == "https://js.stripe.com":
            extra += [
                "https://api.stripe.com",
                "https://hooks.stripe.com",
                "https://m.stripe.network",
            ]
        sources = " ".join(extra)
        response.headers["Content-Security-Policy"] = (
            DEFAULT_CSP.replace("script-src 'self'", f"script-src 'self' {sources}")
            + f"; connect-src 'self' {sources}; frame-src {sources}"
        )
    return response


@router.get("/{provider_id}/payment-method")
def payment_method(
    request: Request,
    viewer: CurrentViewer,
    factory: Factory,
    settings: AppSettings,
    next: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    with unit_of_work(factory) as db:
        customer = get_customer(db, viewer.provider_id, viewer.customer_id)
        connected = get_account(db, viewer.provider_id) is not None
        default_method = customer.default_payment_method
    card = _card(request, viewer, default_method) if connected and default_method else None
    stripe = _stripe_context(request, settings, viewer) if connected else {}
    back = next if next and next.startswith(f"/portal/{viewer.provider_id}/") else None
    response = page(
        request,
        "payment_method.html",
        viewer,
        card=card,
        has_method=bool(default_method),
        connected=connected,
        back=back,
        **stripe,
    )
    return _with_stripe_csp(response, stripe)


@router.post("/{provider_id}/payment-method/setup-intent")
def setup_intent(viewer: CurrentViewer, factory: Factory, gw: Gateway, now: Now) -> JSONResponse:
    """A SetupIntent on the provider's connected account for Stripe.js to confirm."""
    try:
        setup = collection.create_setup_intent(
            factory, gw, viewer.provider_id, viewer.customer_id, now=now
        )
    except MeterplaneError as error:
        return JSONResponse({"error": error.message}, status_code=409)
    return JSONResponse({"client_secret": setup["client_secret"]})


class DefaultMethodIn(BaseModel):
    payment_method: str = Field(min_length=3, max_length=200, pattern=r"^pm_[A-Za-z0-9_]+$")


@router.post("/{provider_id}/payment-method/default")
def make_default(
    request: Request,
    body: DefaultMethodIn,
    viewer: CurrentViewer,
    factory: Factory,
    gw: Gateway,
    now: Now,
) -> JSONResponse:
    """Record the card Stripe.js just saved as the customer's default (checked with Stripe)."""
    try:
        collection.set_default_payment_method(
            factory,
            gw,
            viewer.provider_id,
            viewer.customer_id,
            body.payment_method,
            actor=f"customer:{viewer.customer_id}",
            now=now,
        )
    except MeterplaneError as error:
        return JSONResponse({"error": error.message}, status_code=409)
    session(request).setdefault("flashes", []).append(["success", "Your card is saved."])
    return JSONResponse({"ok": True})
