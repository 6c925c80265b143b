"""The customer portal in Debian Chromium, driven as a person would."""

import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from playwright.sync_api import Page, expect
from sqlalchemy import select

from meterplane.notifications.models import OutboxMessage
from meterplane.payments import worker
from tests.conftest import Tenant, build_catalogue, register_instance
from tests.invoicing.helpers import hourly_samples, ingest
from tests.payments.conftest import deliver
from tests.portal.conftest import Billed, Portal, shot

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def usage_values(portal: Portal, billed: Billed, start: str, end: str, granularity: str) -> dict:
    report = portal.get(
        billed.tenant,
        "/v1/usage",
        customer_id=billed.catalogue.customer_id,
        **{"from": start, "to": end, "granularity": granularity},
    )
    return {
        key: [bucket["quantities"][key] for bucket in report["data"]] for key in report["units"]
    }


def add_november_usage(portal: Portal, billed: Billed) -> None:
    """Two instances over the last two and a half days, one of them resized on the way."""
    register_instance(portal.api, billed.tenant, billed.catalogue.subscription_id, "db-2")  # type: ignore[arg-type]
    samples = hourly_samples("db-1", NOV, 57, cpu=2, memory="4", storage="50")
    samples += hourly_samples("db-2", NOV, 30, cpu=4, memory="16", storage="200")
    samples += hourly_samples(
        "db-2", NOV + timedelta(hours=30), 27, cpu=8, memory="32", storage="250"
    )
    ingest(portal.api, billed.tenant, samples)  # type: ignore[arg-type]


def chart_data(tab: Page) -> dict[str, tuple[list[str], list[float]]]:
    """What each canvas draws (Chart.js' own data) and the exact values it was fed."""
    result: dict[str, tuple[list[str], list[float]]] = tab.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#charts canvas')].map(c => [
            c.dataset.dimension,
            [JSON.parse(c.dataset.values), Chart.getChart(c).data.datasets[0].data]]))"""
    )
    return result


def test_portal_link_usage_charts_invoices_and_pdf(
    page: Page, portal: Portal, billed: Billed, tmp_path: object
) -> None:
    add_november_usage(portal, billed)
    page.goto(portal.link(billed.tenant, billed.catalogue.customer_id))
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    assert page.url == f"{portal.url}/portal/{billed.tenant.provider_id}"
    cookie = next(c for c in page.context.cookies() if c["name"] == "mp_portal")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # Last 48 hours, hourly: the canvases draw exactly what GET /v1/usage reports.
    page.locator("#charts[data-ready='1']").wait_for()
    expected = usage_values(portal, billed, "2026-11-01T10:00:00Z", "2026-11-03T10:00:00Z", "hour")
    drawn = chart_data(page)
    assert set(drawn) == {"cpu_cores", "memory_gib", "storage_gib", "replicas"}
    for key, (values, points) in drawn.items():
        assert values == expected[key], key
        assert points == [float(Decimal(v)) for v in expected[key]], key
    assert drawn["cpu_cores"][0][-1] == "0"  # the hour in progress has no sample yet
    assert Decimal(drawn["cpu_cores"][0][-2]) == 2 + 8
    expect(
        page.get_by_role("img", name="CPU cores usage, per hour over the last 48 hours")
    ).to_be_visible()
    estimate = portal.get(
        billed.tenant, f"/v1/customers/{billed.catalogue.customer_id}/upcoming-invoice"
    )
    expect(page.get_by_test_id("estimate")).to_have_text(f"${Decimal(estimate['subtotal']):,.2f}")
    rows = page.locator("section[aria-labelledby='instances-title'] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("db-2")
    expect(page.get_by_text("Pay now")).to_be_visible()
    shot(page, "usage-48h")

    # This month, daily.
    page.get_by_role("button", name="This month, daily").click()
    page.locator("#charts[data-range='month'][data-ready='1']").wait_for()
    expected = usage_values(portal, billed, "2026-11-01T00:00:00Z", "2026-11-04T00:00:00Z", "day")
    for key, (values, points) in chart_data(page).items():
        assert values == expected[key] and points == [float(Decimal(v)) for v in values], key
    shot(page, "usage-month")

    # Invoices: the issued one, its page, its PDF.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    invoice = portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}")
    table = page.get_by_role("table")
    expect(table).to_contain_text(invoice["number"])
    expect(table).to_contain_text("Issued")
    expect(table).to_contain_text(f"${Decimal(billed.total):,.2f}")
    shot(page, "invoices")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download PDF of {invoice['number']}").click()
    download = download_info.value
    path = download.path()
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    pdf = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    text = pdf.stdout
    assert invoice["number"] in text and "Globex" in text
    page.get_by_role("link", name=invoice["number"], exact=True).click()
    expect(page.get_by_role("heading", name=f"Invoice {invoice['number']}")).to_be_visible()
    expect(page.get_by_role("link", name="Add a card")).to_be_visible()
    shot(page, "invoice-no-card")

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{portal.url}/portal/{billed.tenant.provider_id}/invoices")
    expect(page.get_by_role("heading", name="Sign in to your billing portal")).to_be_visible()


def test_a_link_works_once_and_for_one_hour(page: Page, portal: Portal, billed: Billed) -> None:
    url = portal.link(billed.tenant, billed.catalogue.customer_id)
    stale = portal.link(billed.tenant, billed.catalogue.customer_id)
    page.goto(url)
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    other = page.context.browser.new_context()  # type: ignore[union-attr]
    tab = other.new_page()
    response = tab.goto(url)
    assert response is not None and response.status == 410
    expect(tab.get_by_role("heading", name="This link has already been used")).to_be_visible()
    expect(tab.get_by_label("Billing email address")).to_be_visible()
    shot(tab, "link-used")
    portal.clock.set(portal.clock() + timedelta(hours=1, seconds=1))
    response = tab.goto(stale)
    assert response is not None and response.status == 410
    expect(tab.get_by_role("heading", name="This link has expired")).to_be_visible()
    response = tab.goto(url.rsplit("/", 1)[0] + "/made-up-token")
    assert response is not None and response.status == 404
    expect(tab.get_by_role("heading", name="This link is not valid")).to_be_visible()
    other.close()


def test_magic_link_by_email(page: Page, portal: Portal, billed: Billed) -> None:
    sign_in = f"{portal.url}/portal/{billed.tenant.provider_id}/sign-in"
    page.goto(sign_in)
    expect(page.get_by_role("heading", name="Sign in to your billing portal")).to_be_visible()
    page.get_by_label("Billing email address").fill("nobody@example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    neutral = page.get_by_role("status").filter(has_text="Check your inbox")
    expect(neutral).to_be_visible()
    unknown_text = neutral.inner_text()
    page.goto(sign_in)
    page.get_by_label("Billing email address").fill("billing@globex.example")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(neutral).to_be_visible()
    assert neutral.inner_text() == unknown_text.replace(
        "nobody@example.com", "billing@globex.example"
    )
    shot(page, "magic-link-sent")
    with portal.factory() as session:
        [row] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.event == "portal.magic_link")
        ).all()
        assert row.recipient == "billing@globex.example"
        url = row.payload["data"]["url"]
    page.goto(url)
    expect(page.get_by_role("heading", name="Continue to your billing portal")).to_be_visible()
    shot(page, "magic-link-continue")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_contain_text("Globex")
    page.goto(url)
    expect(page.get_by_role("heading", name="This link has already been used")).to_be_visible()


def test_save_a_card_and_pay_an_open_invoice(page: Page, portal: Portal, billed: Billed) -> None:
    root = f"{portal.url}/portal/{billed.tenant.provider_id}"
    page.goto(portal.link(billed.tenant, billed.catalogue.customer_id))
    page.goto(f"{root}/invoices/{billed.invoice_id}")
    page.get_by_role("link", name="Add a card").click()
    expect(page.get_by_role("heading", name="Payment method")).to_be_visible()
    expect(page.get_by_text("No card saved yet")).to_be_visible()
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("30")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Postal code").fill("10115")
    shot(page, "payment-method-form")
    page.get_by_role("button", name="Save card").click()
    page.wait_for_url(f"{root}/invoices/{billed.invoice_id}")
    customer = portal.get(billed.tenant, f"/v1/customers/{billed.catalogue.customer_id}")
    assert customer["default_payment_method"].startswith("pm_")
    [method] = portal.front.listing(
        billed.account,
        "/v1/payment_methods",
        customer=_stripe_customer(portal, billed),
        type="card",
    )
    assert method["id"] == customer["default_payment_method"]
    assert method["card"]["last4"] == "4242"

    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    shot(page, "invoice-pay")
    amount = f"${Decimal(billed.total):,.2f}"
    page.get_by_role("button", name=f"Pay {amount}").click()
    page.wait_for_url(f"**/invoices/{billed.invoice_id}?paid=1")
    expect(page.get_by_text("your payment is being confirmed")).to_be_visible()

    # Stripe's webhook, then the worker: the invoice is paid (not before).
    assert portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}")["status"] == "issued"
    assert deliver(portal.api, portal.front, billed.account, "payment_intent.succeeded")  # type: ignore[arg-type]
    worker.run_due(portal.factory, now=portal.clock(), gateway=portal.gateway)
    assert portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}")["status"] == "paid"
    page.reload()
    expect(page.get_by_role("heading", name="Invoice")).to_contain_text("Paid")
    expect(page.get_by_text("Paid in full")).to_be_visible()
    history = portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}/payments")
    [attempt] = history["attempts"]
    assert attempt["kind"] == "portal" and attempt["status"] == "succeeded"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payment method").click()
    expect(page.get_by_test_id("saved-card")).to_contain_text("4242")
    shot(page, "payment-method-saved")


def test_card_needing_3d_secure_is_authenticated_in_the_browser(
    page: Page, portal: Portal, billed: Billed
) -> None:
    root = f"{portal.url}/portal/{billed.tenant.provider_id}"
    page.goto(portal.link(billed.tenant, billed.catalogue.customer_id))
    page.goto(f"{root}/payment-method")
    page.get_by_label("Card number").fill("4000002500003155")
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Save card").click()
    page.get_by_role("button", name="Complete authentication").click()  # Stripe.js' 3-D Secure
    expect(page.get_by_test_id("saved-card")).to_contain_text("3155")
    page.goto(f"{root}/invoices/{billed.invoice_id}")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(f"**/invoices/{billed.invoice_id}?paid=1")
    assert deliver(portal.api, portal.front, billed.account, "payment_intent.succeeded")  # type: ignore[arg-type]
    worker.run_due(portal.factory, now=portal.clock(), gateway=portal.gateway)
    assert portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}")["status"] == "paid"


def test_a_declined_card_shows_why_and_charges_nothing(
    page: Page, portal: Portal, billed: Billed
) -> None:
    root = f"{portal.url}/portal/{billed.tenant.provider_id}"
    page.goto(portal.link(billed.tenant, billed.catalogue.customer_id))
    page.goto(f"{root}/payment-method")
    page.get_by_label("Card number").fill("4000000000000341")
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_test_id("saved-card")).to_contain_text("0341")
    page.goto(f"{root}/invoices/{billed.invoice_id}")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("alert")).to_contain_text("declined")
    shot(page, "invoice-declined")
    assert portal.get(billed.tenant, f"/v1/invoices/{billed.invoice_id}")["status"] == "issued"


def test_another_customers_or_providers_invoice_is_not_found(
    page: Page, portal: Portal, tenant: Tenant, make_tenant: object
) -> None:
    # Two customers of one provider, each with an issued October invoice, and another
    # provider's customer with its own.
    ours = build_catalogue(portal.api, tenant)  # type: ignore[arg-type]
    neighbour = build_catalogue(portal.api, tenant, suffix=" Neighbour")  # type: ignore[arg-type]
    other: Tenant = make_tenant("Other Cloud")  # type: ignore[operator]
    foreign = build_catalogue(portal.api, other, suffix=" Foreign")  # type: ignore[arg-type]
    issued = {}
    for who, catalogue, instance in [
        (tenant, ours, "db-1"),
        (tenant, neighbour, "nb-1"),
        (other, foreign, "fx-1"),
    ]:
        portal.clock.set(datetime(2026, 9, 30, tzinfo=UTC))
        register_instance(portal.api, who, catalogue.subscription_id, instance)  # type: ignore[arg-type]
        portal.clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
        ingest(portal.api, who, hourly_samples(instance, datetime(2026, 10, 1, tzinfo=UTC), 24))  # type: ignore[arg-type]
    for who in (tenant, other):
        closed = portal.api.post("/v1/billing/close", json={"period": "2026-10"}, headers=who.admin)
        assert closed.status_code == 200, closed.text
        for invoice in portal.get(who, "/v1/invoices")["data"]:
            approved = portal.api.post(f"/v1/invoices/{invoice['id']}/approve", headers=who.admin)
            assert approved.status_code == 200, approved.text
            issued[invoice["customer_id"]] = invoice["id"]
    mine = issued[ours.customer_id]

    root = f"{portal.url}/portal/{tenant.provider_id}"
    page.goto(portal.link(tenant, ours.customer_id))
    for invoice_id in (issued[neighbour.customer_id], issued[foreign.customer_id], "inv_nope"):
        for suffix in ("", "/pdf"):
            response = page.goto(f"{root}/invoices/{invoice_id}{suffix}")
            assert response is not None and response.status == 404, (invoice_id, suffix)
            expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
            expect(page.get_by_role("table")).to_have_count(0)
    shot(page, "invoice-not-found")
    response = page.goto(f"{root}/invoices/{mine}")
    assert response is not None and response.status == 200
    page.goto(f"{root}/invoices")
    expect(page.get_by_role("table").locator("tbody tr")).to_have_count(1)
    # The session is for this provider only: the other provider's portal asks to sign in.
    page.goto(f"{portal.url}/portal/{other.provider_id}/invoices/{issued[foreign.customer_id]}")
    expect(page.get_by_role("heading", name="Sign in to your billing portal")).to_be_visible()


def _stripe_customer(portal: Portal, billed: Billed) -> str:
    [customer] = portal.front.listing(billed.account, "/v1/customers")
    customer_id: str = customer["id"]
    return customer_id


def test_keyboard_only_with_labels(page: Page, portal: Portal, billed: Billed) -> None:
    root = f"{portal.url}/portal/{billed.tenant.provider_id}"
    page.goto(f"{root}/sign-in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    expect(page.get_by_label("Billing email address")).to_be_focused()
    page.keyboard.type("billing@globex.example")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Email me a sign-in link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Check your inbox")).to_be_visible()

    page.goto(portal.link(billed.tenant, billed.catalogue.customer_id))
    page.locator("#charts[data-ready='1']").wait_for()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # skip link → main
    expect(page.locator("main")).to_be_focused()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Usage").focus()
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Invoices")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused.startswith("INV-"):
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Invoice INV-")).to_be_visible()
    for path in ("", "/invoices", f"/invoices/{billed.invoice_id}", "/payment-method", "/sign-in"):
        page.goto(f"{root}{path}")
        unlabeled = page.evaluate(
            """() => [...document.querySelectorAll(
                    'input:not([type=hidden]), select, textarea, button')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
              .map(el => el.outerHTML)"""
        )
        assert unlabeled == [], (path, unlabeled)
