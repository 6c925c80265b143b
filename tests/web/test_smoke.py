"""Sign in and the dashboard, in Chromium."""

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser import screenshot
from tests.conftest import Tenant
from tests.web.conftest import Login, sign_in


def test_sign_in_and_dashboard(
    page: Page, live_server: str, tenant: Tenant, make_user: Callable[..., Login]
) -> None:
    login = make_user(tenant, "owner@acme.example")
    page.goto(f"{live_server}/console")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    screenshot(page, "login-error")
    sign_in(page, live_server, login)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    screenshot(page, "dashboard")
