"""The provider console in Chromium, driven as a person would (on SQLite and PostgreSQL)."""

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from meterplane.users.models import Role
from tests.browser import screenshot
from tests.conftest import Tenant
from tests.tenancy.test_profile import png
from tests.web.conftest import Billed, Login, sign_in

MakeUser = Callable[..., Login]


def test_sign_in_refuses_a_wrong_password_then_shows_the_dashboard(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser
) -> None:
    login = make_user(billed.tenant, "owner@acme.example")
    page.goto(f"{live_server}/console/invoices")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    screenshot(page, "console-login-error")
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    # Back where the visitor was going.
    expect(page.get_by_role("heading", name="Manage Invoices")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_text("Awaiting your review")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Globex Two"))).to_be_visible()
    screenshot(page, "console-dashboard")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{live_server}/console")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()


def test_review_approve_void_and_download_a_pdf(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser, client: TestClient
) -> None:
    sign_in(page, live_server, make_user(billed.tenant, "billing@acme.example", Role.billing))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    page.get_by_label("Status").select_option("pending_approval")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row")).to_have_count(3)
    screenshot(page, "console-invoices")
    page.get_by_role("row", name=re.compile("Globex Two")).get_by_role(
        "link", name="Draft 2026-10", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Per-instance breakdown")).to_be_visible()
    expect(page.get_by_role("link", name="kafka-1").first).to_be_visible()
    # 24 h × 4 cores = 96 core-hours at 0.04 = 3.84
    expect(page.get_by_role("row", name=re.compile("CPU")).first).to_contain_text("$3.84")
    screenshot(page, "console-invoice-draft")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert download.value.path().read_bytes()[:5] == b"%PDF-"
    page.get_by_role("button", name="Approve and issue").click()
    expect(page.get_by_role("status")).to_contain_text("is issued")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Issued")
    expect(page.get_by_role("button", name="Approve and issue")).to_have_count(0)

    # Void the other one from the list, with the bulk action (confirming the dialog).
    page.goto(f"{live_server}/console/invoices?status=pending_approval")
    page.get_by_label(re.compile("Select .* for Globex$")).check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Void selected").click()
    expect(page.get_by_role("status")).to_contain_text("1 invoice voided")
    statuses = {
        row["customer_id"]: row["status"]
        for row in client.get("/v1/invoices", headers=billed.tenant.admin).json()["data"]
    }
    assert statuses == {billed.first.customer_id: "void", billed.second.customer_id: "issued"}


def test_viewer_sees_no_approve_button_and_is_refused(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser, client: TestClient
) -> None:
    invoice_id = billed.invoice_ids["Globex"]
    sign_in(page, live_server, make_user(billed.tenant, "viewer@acme.example", Role.viewer))
    page.goto(f"{live_server}/console/invoices/{invoice_id}")
    expect(page.get_by_role("heading", name="Lines")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and issue")).to_have_count(0)
    expect(page.get_by_role("button", name="Void invoice")).to_have_count(0)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    response = page.request.post(
        f"{live_server}/console/invoices/{invoice_id}/approve", form={"csrf_token": token}
    )
    assert response.status == 403
    assert "does not allow this" in response.text()
    response = page.request.post(
        f"{live_server}/console/access/keys",
        form={"csrf_token": token, "name": "x", "scope": "admin"},
    )
    assert response.status == 403
    invoice = client.get(f"/v1/invoices/{invoice_id}", headers=billed.tenant.admin).json()
    assert invoice["status"] == "pending_approval"


def test_a_post_without_the_csrf_token_is_refused(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser, client: TestClient
) -> None:
    invoice_id = billed.invoice_ids["Globex"]
    sign_in(page, live_server, make_user(billed.tenant, "owner@acme.example"))
    for form in ({}, {"csrf_token": "forged"}):
        response = page.request.post(
            f"{live_server}/console/invoices/{invoice_id}/approve", form=form
        )
        assert response.status == 403
        assert "did not come from this site" in response.text()
    page.goto(f"{live_server}/console/invoices/{invoice_id}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_role("button", name="Approve and issue").click()
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    screenshot(page, "console-csrf-refused")
    invoice = client.get(f"/v1/invoices/{invoice_id}", headers=billed.tenant.admin).json()
    assert invoice["status"] == "pending_approval"


def test_another_providers_ids_are_404_pages(
    page: Page,
    live_server: str,
    billed: Billed,
    make_user: MakeUser,
    make_tenant: Callable[[str], Tenant],
) -> None:
    other = make_tenant("Other Cloud")
    sign_in(page, live_server, make_user(other, "owner@other.example"))
    for path in (
        f"/console/invoices/{billed.invoice_ids['Globex']}",
        f"/console/invoices/{billed.invoice_ids['Globex']}/pdf",
        f"/console/customers/{billed.first.customer_id}",
        "/console/instances/db-1",
        "/console/no-such-page",
    ):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    screenshot(page, "console-404")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(
        f"{live_server}/console/invoices/{billed.invoice_ids['Globex']}/approve",
        form={"csrf_token": token or ""},
    )
    assert response.status == 404


def test_upload_a_logo_and_see_the_invoice_header_preview(
    page: Page, live_server: str, tenant: Tenant, make_user: MakeUser, client: TestClient
) -> None:
    sign_in(page, live_server, make_user(tenant, "owner@acme.example"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Business profile").click()
    page.get_by_label("Legal name").fill("Acme Cloud GmbH")
    page.get_by_label("Address").fill("Hauptstrasse 1\n10115 Berlin")
    preview = page.locator("#invoice-preview")
    expect(preview).to_contain_text("Acme Cloud GmbH")  # live, before saving
    expect(preview).to_contain_text("10115 Berlin")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_contain_text("Business profile saved")
    page.get_by_label("Logo file").set_input_files(
        files=[{"name": "logo.png", "mimeType": "image/png", "buffer": png()}]
    )
    logo = page.get_by_role("img", name="Your logo")
    expect(logo).to_be_visible()  # previewed before the upload
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("Logo uploaded")
    expect(logo).to_have_attribute("src", "/console/profile/logo")
    assert page.evaluate("document.getElementById('pv-logo').naturalWidth") == 96
    screenshot(page, "console-profile")
    profile = client.get("/v1/provider/profile", headers=tenant.admin).json()
    assert (profile["legal_name"], profile["has_logo"]) == ("Acme Cloud GmbH", True)

    # A file that is not an image is refused with the reason.
    page.get_by_label("Logo file").set_input_files(
        files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"<svg onload='x'/>"}]
    )
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("heading", name="Please check your input")).to_be_visible()


def test_change_a_quota_and_add_a_price_version(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser, client: TestClient
) -> None:
    sign_in(page, live_server, make_user(billed.tenant, "owner@acme.example"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pricing").click()
    plan_id = billed.first.plan_id
    quotas = page.get_by_role("form", name="Quotas of Standard").first
    page.locator(f"#quota-{plan_id}").fill("3")
    page.locator(f"#pm-{plan_id}").check()
    page.get_by_role("button", name="Save quotas of Standard").first.click()
    expect(page.get_by_role("status")).to_contain_text("Quotas of Standard saved")
    plan = client.get(f"/v1/plans/{plan_id}", headers=billed.tenant.admin).json()
    assert (plan["max_instances_per_customer"], plan["require_payment_method"]) == (3, True)
    # Fewer than a customer already runs is refused by the catalogue, with its reason.
    page.locator(f"#quota-{plan_id}").fill("1")
    page.get_by_role("button", name="Save quotas of Standard").first.click()
    expect(page.get_by_role("heading", name="Conflict")).to_be_visible()
    page.go_back()
    del quotas

    page.goto(f"{live_server}/console/pricing")
    page.locator(f"#plan-{plan_id} summary", has_text="Add a price version").click()
    page.locator(f"#pv-{plan_id}-cpu_cores").fill("0.05")
    page.locator(f"#pv-from-{plan_id}").fill("2026-12-01T00:00")
    page.locator(f"#plan-{plan_id}").get_by_role("button", name="Add price version").click()
    expect(page.get_by_role("status")).to_contain_text("New price version saved")
    screenshot(page, "console-pricing")
    page.get_by_label("Automatically after a number of days").check()
    page.get_by_label("Days before automatic approval").fill("5")
    page.get_by_role("button", name="Save approval setting").click()
    expect(page.get_by_role("status")).to_contain_text("5 day(s)")


def test_create_use_and_revoke_an_api_key(
    page: Page, live_server: str, tenant: Tenant, make_user: MakeUser, client: TestClient
) -> None:
    sign_in(page, live_server, make_user(tenant, "owner@acme.example"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users & API keys").click()
    page.get_by_label("Key name").fill("control plane")
    page.get_by_label("Scope").select_option("admin")
    page.get_by_role("button", name="Create API key").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("mp_admin_")
    screenshot(page, "console-access")
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/services", headers=auth).status_code == 200
    page.goto(f"{live_server}/console/access")  # the secret is not shown again
    expect(page.locator("#new-key")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke key control plane").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked")
    assert client.get("/v1/services", headers=auth).status_code == 401

    # Add a viewer; they can sign in in another browser context.
    page.get_by_label("Email").fill("viewer@acme.example")
    page.get_by_label("Initial password (10+ characters)").fill("viewer password 1")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("viewer@acme.example can now sign in")


def test_keyboard_reaches_the_main_actions_with_visible_labels(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser
) -> None:
    login = make_user(billed.tenant, "owner@acme.example")
    page.goto(f"{live_server}/console")
    active = "document.activeElement.id || document.activeElement.textContent.trim()"
    assert page.evaluate(active) == "email"  # autofocus
    page.keyboard.type(login.email)
    page.keyboard.press("Tab")
    assert page.evaluate(active) == "password"
    page.keyboard.type(login.password)
    page.keyboard.press("Tab")
    assert page.evaluate(active) == "Sign in"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto(f"{live_server}/console/invoices/{billed.invoice_ids['Globex']}")
    page.keyboard.press("Tab")
    assert page.evaluate(active) == "Skip to content"
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
        if reached[-1] == "Approve and issue":
            break
    assert "Invoices" in reached and reached[-1] == "Approve and issue", reached
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("is issued")
    snapshot = page.locator("main").aria_snapshot()
    assert 'heading "Lines"' in snapshot and 'link "Download PDF"' in snapshot


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)"""


def test_every_page_renders_with_labels_and_screenshots(
    page: Page, live_server: str, billed: Billed, make_user: MakeUser
) -> None:
    sign_in(page, live_server, make_user(billed.tenant, "owner@acme.example"))
    pages = {
        "console-customers": "/console/customers",
        "console-customer": f"/console/customers/{billed.first.customer_id}",
        "console-instance": "/console/instances/db-1?range=90d",
        "console-rejections": "/console/rejections",
        "console-payments": "/console/payments",
        "console-notifications": "/console/notifications",
        "console-export": "/console/export",
        "console-pricing-full": "/console/pricing",
        "console-invoices-all": "/console/invoices",
    }
    for name, path in pages.items():
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 200, path
        assert page.evaluate(UNLABELLED) == [], path
        if name == "console-instance":
            # Chart.js drew the usage: the canvas has pixels and one dataset per dimension.
            page.wait_for_function("document.querySelector('canvas').dataset.drawn === '1'")
            expect(page.get_by_role("cell", name=re.compile("cpu_cores"))).to_be_visible()
        if name == "console-payments":
            expect(page.get_by_text("Charging is not possible right now.")).to_be_visible()
        screenshot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/console")
    screenshot(page, "console-dashboard-mobile")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
