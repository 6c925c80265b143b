"""Ways into the portal: one-time links minted by the provider, magic links asked for by email.

A token is 256 random bits shown once (in the URL); only its SHA-256 is stored, with an expiry
and the moment it was used. Redeeming marks it used in one conditional UPDATE, so two browsers
racing with the same link cannot both get in.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from meterplane.customers.models import Customer
from meterplane.customers.service import get_customer
from meterplane.kit.errors import NotFound
from meterplane.kit.ids import new_id
from meterplane.notifications.models import BillingEmail
from meterplane.notifications.service import notify
from meterplane.portal.models import PortalToken, TokenKind
from meterplane.tenancy.models import Provider

LINK_TTL = timedelta(hours=1)
# At most one magic link per customer and address in this window: a script hammering the
# sign-in form cannot flood an inbox.
MAGIC_LINK_THROTTLE = timedelta(minutes=1)
MAGIC_LINK_EVENT = "portal.magic_link"


class LinkRefused(NotFound):
    """The link is unknown, used already or expired (``reason`` says which)."""

    code = "portal_link_invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(f"this portal link is {reason}", reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class MintedLink:
    token: str
    row: PortalToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_provider(session: Session, provider_id: str) -> Provider:
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("this portal does not exist", code="provider_not_found")
    return provider


def portal_root(base_url: str, provider_id: str) -> str:
    return f"{base_url.rstrip('/')}/portal/{provider_id}"


def link_url(base_url: str, row: PortalToken, token: str) -> str:
    """``/portal/{provider}/enter/{token}`` (provider link) or ``…/magic/{token}`` (email)."""
    path = "enter" if row.kind == TokenKind.link else "magic"
    return f"{portal_root(base_url, row.provider_id)}/{path}/{token}"


def mint_token(
    session: Session,
    provider_id: str,
    customer_id: str,
    *,
    kind: TokenKind,
    email: str | None = None,
    now: datetime,
) -> MintedLink:
    """A new single-use token for the customer, valid for an hour."""
    get_customer(session, provider_id, customer_id)
    token = secrets.token_urlsafe(32)
    row = PortalToken(
        id=new_id("ptk"),
        provider_id=provider_id,
        customer_id=customer_id,
        kind=kind,
        token_hash=hash_token(token),
        email=email,
        created_at=now,
        expires_at=now + LINK_TTL,
    )
    session.add(row)
    session.flush()
    return MintedLink(token, row)


def redeem(
    session: Session, provider_id: str, token: str, *, kind: TokenKind, now: datetime
) -> PortalToken:
    """Use the token once: returns it (now used), or raises :class:`LinkRefused`."""
    digest = hash_token(token)
    claimed = session.execute(
        update(PortalToken)
        .where(
            PortalToken.token_hash == digest,
            PortalToken.provider_id == provider_id,
            PortalToken.kind == kind,
            PortalToken.used_at.is_(None),
            PortalToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(PortalToken.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    row = session.scalar(
        select(PortalToken).where(
            PortalToken.token_hash == digest, PortalToken.provider_id == provider_id
        )
    )
    if claimed is None or row is None:
        if row is None or row.kind != kind:
            raise LinkRefused("not valid")
        raise LinkRefused("already used" if row.used_at is not None else "expired")
    session.refresh(row)
    return row


def peek(session: Session, provider_id: str, token: str, *, kind: TokenKind, now: datetime) -> str:
    """Whether a token would be accepted, without using it: "ok", "used", "expired", "unknown"."""
    row = session.scalar(
        select(PortalToken).where(
            PortalToken.token_hash == hash_token(token),
            PortalToken.provider_id == provider_id,
            PortalToken.kind == kind,
        )
    )
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    return "expired" if row.expires_at <= now else "ok"


def customers_with_email(session: Session, provider_id: str, email: str) -> list[Customer]:
    """The provider's customers whose primary or extra billing email is ``email`` (any case)."""
    wanted = email.strip().lower()
    extra = select(BillingEmail.customer_id).where(
        BillingEmail.provider_id == provider_id, func.lower(BillingEmail.email) == wanted
    )
    return list(
        session.scalars(
            select(Customer)
            .where(
                Customer.provider_id == provider_id,
                or_(func.lower(Customer.email) == wanted, Customer.id.in_(extra)),
            )
            .order_by(Customer.created_at, Customer.id)
        )
    )


def request_magic_link(
    session: Session, provider_id: str, email: str, *, base_url: str, now: datetime
) -> int:
    """Email a sign-in link to ``email`` for each customer it bills; returns how many were sent.

    The caller shows the same answer whatever this returns: the form never tells a visitor
    whether an address is known.
    """
    address = email.strip()
    if not address or "@" not in address or len(address) > 320:
        return 0
    get_provider(session, provider_id)
    sent = 0
    for customer in customers_with_email(session, provider_id, address):
        recent = session.scalar(
            select(func.count())
            .select_from(PortalToken)
            .where(
                PortalToken.customer_id == customer.id,
                PortalToken.kind == TokenKind.email,
                func.lower(PortalToken.email) == address.lower(),
                PortalToken.created_at > now - MAGIC_LINK_THROTTLE,
            )
        )
        if recent:
            continue
        minted = mint_token(
            session, provider_id, customer.id, kind=TokenKind.email, email=address, now=now
        )
        notify(
            session,
            provider_id,
            MAGIC_LINK_EVENT,
            subject_id=minted.row.id,  # one email per token, whatever retries happen
            data={
                "email": address,
                "locale": customer.locale,
                "customer_id": customer.id,
                "customer_name": customer.name,
                "url": link_url(base_url, minted.row, minted.token),
                "expires_minutes": int(LINK_TTL.total_seconds() // 60),
            },
            now=now,
        )
        sent += 1
    return sent
