"""``POST /v1/customers/{id}/portal-sessions``: the provider's app mints a one-time portal link."""

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from meterplane.api.deps import Admin, AppSettings, Factory, Now, unit_of_work
from meterplane.portal import service
from meterplane.portal.models import TokenKind

router = APIRouter(prefix="/v1", tags=["customers"])


class PortalSessionOut(BaseModel):
    url: str
    expires_at: datetime


@router.post("/customers/{customer_id}/portal-sessions", status_code=201)
def create_portal_session(
    customer_id: str, caller: Admin, factory: Factory, settings: AppSettings, now: Now
) -> PortalSessionOut:
    """A URL that signs the customer into its portal once, within an hour. Redirect them to it."""
    with unit_of_work(factory) as session:
        minted = service.mint_token(
            session, caller.provider_id, customer_id, kind=TokenKind.link, now=now
        )
        return PortalSessionOut(
            url=service.link_url(settings.portal_base_url, minted.row, minted.token),
            expires_at=minted.row.expires_at,
        )
