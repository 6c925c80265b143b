"""Settings pages: business profile and logo, Stripe Connect, notifications, metering export."""

from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import Response

from meterplane.api.routes.payments import gateway
from meterplane.export import service as export
from meterplane.export.schemas import TargetIn
from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.notifications import outbox, webhooks
from meterplane.notifications.models import OutboxStatus
from meterplane.payments import connect
from meterplane.payments.models import ProviderStripeAccount
from meterplane.payments.service import payment_settings
from meterplane.tenancy import profile
from meterplane.web.console.base import (
    PREFIX,
    CurrentUser,
    Me,
    app_settings,
    console_router,
    db,
    now,
)
from meterplane.web.routing import form_of, redirect_to, render
from meterplane.web.sessions import flash

router = console_router()


# Business profile ---------------------------------------------------------------------------


@router.get("/profile")
def profile_page(request: Request, me: CurrentUser) -> Response:
    with db(request) as s:
        current = profile.get_profile(s, me.provider_id)
        return render(
            request,
            "console/profile.html",
            {
                "me": me,
                "active": "profile",
                "profile": current,
                "max_kib": profile.LOGO_MAX_BYTES // 1024,
            },
        )


@router.post("/profile")
def save_profile(
    request: Request,
    me: CurrentUser,
    legal_name: Annotated[str, Form(max_length=200)] = "",
    address: Annotated[str, Form(max_length=2000)] = "",
    tax_id: Annotated[str, Form(max_length=100)] = "",
    support_email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    me.require("settings")
    with db(request) as s:
        profile.update_profile(
            s,
            me.provider_id,
            legal_name=legal_name or None,
            address=address or None,
            tax_id=tax_id or None,
            support_email=support_email or None,
            actor=me.actor,
            now=now(request),
        )
    flash(request, "Business profile saved. New invoices will show it.")
    return redirect_to(request, f"{PREFIX}/profile")


@router.post("/profile/logo")
def upload_logo(request: Request, me: CurrentUser, logo: Annotated[UploadFile, File()]) -> Response:
    me.require("settings")
    data = logo.file.read(profile.LOGO_MAX_BYTES + 1)
    if not data:
        raise InvalidInput("choose a PNG or SVG file first", code="no_logo")
    with db(request) as s:
        profile.set_logo(
            s, me.provider_id, data, logo.content_type, actor=me.actor, now=now(request)
        )
    flash(request, "Logo uploaded.")
    return redirect_to(request, f"{PREFIX}/profile")


@router.post("/profile/logo/delete")
def delete_logo(request: Request, me: CurrentUser) -> Response:
    me.require("settings")
    with db(request) as s:
        profile.delete_logo(s, me.provider_id, actor=me.actor, now=now(request))
    flash(request, "Logo removed.")
    return redirect_to(request, f"{PREFIX}/profile")


@router.get("/profile/logo")
def logo_image(request: Request, me: CurrentUser) -> Response:
    with db(request) as s:
        logo = profile.get_logo(s, me.provider_id)
    # The SVG was checked on upload; a sandbox CSP keeps it inert even if opened directly.
    return Response(
        logo.data,
        media_type=logo.content_type,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        },
    )


# Payments (Stripe Connect) ------------------------------------------------------------------


@router.get("/payments")
def payments_page(request: Request, me: CurrentUser) -> Response:
    settings = app_settings(request)
    with db(request) as s:
        account = s.get(ProviderStripeAccount, me.provider_id)
        return render(
            request,
            "console/payments.html",
            {
                "me": me,
                "active": "payments",
                "account": account,
                "connected": account is not None and account.disconnected_at is None,
                "platform_ready": bool(settings.stripe_secret_key and settings.stripe_client_id),
                "retry": payment_settings(s, me.provider_id),
            },
        )


@router.post("/payments/connect")
def start_connect(request: Request, me: CurrentUser) -> Response:
    me.require("settings")
    settings = app_settings(request)
    if not (settings.stripe_secret_key and settings.stripe_client_id):
        raise InvalidInput(
            "Stripe is not configured on this Meterplane server (METERPLANE_STRIPE_SECRET_KEY "
            "and METERPLANE_STRIPE_CLIENT_ID); ask its operator.",
            code="stripe_not_configured",
        )
    state, _ = connect.start_onboarding(
        settings.secret_key,
        me.provider_id,
        ttl_seconds=settings.stripe_connect_state_ttl_seconds,
        now=now(request),
    )
    url = gateway(request).authorize_url(
        state=state, redirect_uri=settings.stripe_connect_redirect_uri
    )
    return redirect_to(request, url)


@router.post("/payments/disconnect")
def disconnect(request: Request, me: CurrentUser) -> Response:
    me.require("settings")
    with db(request) as s:
        account = connect.require_account(s, me.provider_id)
        stripe_account_id = account.stripe_account_id
    gateway(request).deauthorize(stripe_account_id)
    with db(request) as s:
        connect.record_disconnection(
            s,
            me.provider_id,
            actor=me.actor,
            reason="disconnected in the console",
            now=now(request),
        )
    flash(request, "Stripe is disconnected: invoices will not be charged until you connect again.")
    return redirect_to(request, f"{PREFIX}/payments")


# Notifications ------------------------------------------------------------------------------


@router.get("/notifications")
def notifications_page(request: Request, me: CurrentUser) -> Response:
    return _notifications(request, me)


def _notifications(request: Request, me: Me, new_secret: str | None = None) -> Response:
    with db(request) as s:
        return render(
            request,
            "console/notifications.html",
            {
                "me": me,
                "active": "notifications",
                "endpoints": webhooks.list_endpoints(s, me.provider_id),
                "failed": outbox.list_messages(
                    s, me.provider_id, status=OutboxStatus.failed, limit=50
                ),
                "failing": outbox.list_failing_addresses(s, me.provider_id),
                "events": webhooks.WEBHOOK_EVENTS,
                "new_secret": new_secret,
            },
        )


@router.post("/notifications/endpoints")
def add_endpoint(request: Request, me: CurrentUser) -> Response:
    me.require("settings")
    form = form_of(request)
    events = [str(value) for value in form.getlist("events")]
    with db(request) as s:
        endpoint = webhooks.create_endpoint(
            s, me.provider_id, str(form.get("url", "")).strip(), events, now=now(request)
        )
        secret = endpoint.secret
    # Shown once, in this response: secrets never go into the (signed, not encrypted) cookie.
    flash(request, "Webhook endpoint added. Copy its signing secret now: it is shown only once.")
    return _notifications(request, me, new_secret=secret)


@router.post("/notifications/endpoints/{endpoint_id}/delete")
def delete_endpoint(request: Request, me: CurrentUser, endpoint_id: str) -> Response:
    me.require("settings")
    with db(request) as s:
        webhooks.delete_endpoint(s, me.provider_id, endpoint_id, now=now(request))
    flash(request, "Webhook endpoint removed.")
    return redirect_to(request, f"{PREFIX}/notifications")


@router.post("/notifications/outbox/{message_id}/retry")
def retry_message(request: Request, me: CurrentUser, message_id: int) -> Response:
    me.require("settings")
    with db(request) as s:
        outbox.retry(s, me.provider_id, message_id, now=now(request))
    flash(request, "The message is queued again.")
    return redirect_to(request, f"{PREFIX}/notifications")


# Metering export ----------------------------------------------------------------------------


@router.get("/export")
def export_page(request: Request, me: CurrentUser) -> Response:
    settings = app_settings(request)
    with db(request) as s:
        status = export.export_status(s, me.provider_id, settings=settings, now=now(request))
        try:
            target = export.target_out(export.get_target(s, me.provider_id), settings)
        except NotFound:
            target = None
        return render(
            request,
            "console/export.html",
            {
                "me": me,
                "active": "export",
                "status": status,
                "target": target,
                "allow_endpoint": settings.export_allow_endpoint_url,
            },
        )


@router.post("/export")
def save_export(request: Request, me: CurrentUser) -> Response:
    me.require("settings")
    form = form_of(request)
    fields = {
        key: str(form.get(key, "")).strip()
        for key in (
            "kind",
            "bucket",
            "prefix",
            "region",
            "access_key_id",
            "secret_access_key",
            "role_arn",
            "format",
            "layout",
            "environment",
            "endpoint_url",
        )
    }
    body: dict[str, object] = {key: value for key, value in fields.items() if value}
    body["gzip"] = form.get("gzip") == "on"
    body["enabled"] = form.get("enabled") == "on"
    try:
        target = TargetIn.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise InvalidInput(problems, code="invalid_target") from None
    with db(request) as s:
        export.configure_target(
            s, me.provider_id, target, settings=app_settings(request), now=now(request)
        )
    flash(request, "Export target saved.")
    return redirect_to(request, f"{PREFIX}/export")
