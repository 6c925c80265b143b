"""Console browser tests: fixtures from tests/browser.py, plus a signed-in provider user."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page
from sqlalchemy.orm import Session, sessionmaker

from meterplane.users.models import Role
from meterplane.users.service import create_user
from tests.browser import browser, live_app, live_server, page, screenshot  # noqa: F401
from tests.conftest import Clock, Tenant

PASSWORD = "correct horse battery"


@dataclass
class Login:
    email: str
    password: str
    provider_id: str


@pytest.fixture
def make_user(factory: sessionmaker[Session], clock: Clock) -> Callable[..., Login]:
    def _make(tenant: Tenant, email: str, role: Role = Role.owner) -> Login:
        with factory() as session, session.begin():
            create_user(
                session,
                tenant.provider_id,
                email=email,
                password=PASSWORD,
                role=role,
                actor="test",
                now=clock(),
            )
        return Login(email, PASSWORD, tenant.provider_id)

    return _make


def sign_in(tab: Page, base_url: str, login: Login, *, next_path: str = "/console") -> None:
    """Sign in through the login form, as a person would."""
    tab.goto(f"{base_url}{next_path}")
    tab.get_by_label("Email").fill(login.email)
    tab.get_by_label("Password").fill(login.password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"**{next_path}")
