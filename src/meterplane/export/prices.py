"""The unit price in force at an hour, answered by rating's price book (one pricing implementation).

Prices change only at a few moments (plan versions, overrides), so each plan and subscription
pair is cut once into segments of constant prices and every hour is answered by a bisection.
"""

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.catalog.models import PlanPrice
from meterplane.customers.models import Subscription, SubscriptionPrice
from meterplane.invoicing.rating import _PriceBook

_FIRST = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 1, 1, tzinfo=UTC)


class HourlyPrices:
    """``prices(plan_id, subscription, hour)``: the unit price per dimension key at that hour."""

    def __init__(self, book: _PriceBook) -> None:
        self._book = book
        self._cuts: dict[tuple[str, str], list[datetime]] = {}
        self._segments: dict[tuple[str, str, int], dict[str, Decimal]] = {}

    def prices(
        self, plan_id: str, subscription: Subscription, hour: datetime
    ) -> dict[str, Decimal]:
        pair = (plan_id, subscription.id)
        cuts = self._cuts.get(pair)
        if cuts is None:
            cuts = self._book.boundaries(plan_id, subscription, _FIRST, _LAST)
            self._cuts[pair] = cuts
        index = bisect_right(cuts, hour)
        key = (plan_id, subscription.id, index)
        held = self._segments.get(key)
        if held is None:
            held = self._book.prices_at(plan_id, subscription, hour)
            self._segments[key] = held
        return held


def load_hourly_prices(
    session: Session, provider_id: str, plan_ids: Iterable[str], subscription_ids: Iterable[str]
) -> HourlyPrices:
    """Every price version of these plans and every override of these subscriptions."""
    plans, subscriptions = list(plan_ids), list(subscription_ids)
    book = _PriceBook(
        session.scalars(
            select(PlanPrice).where(
                PlanPrice.provider_id == provider_id, PlanPrice.plan_id.in_(plans)
            )
        ),
        session.scalars(
            select(SubscriptionPrice).where(
                SubscriptionPrice.provider_id == provider_id,
                SubscriptionPrice.subscription_id.in_(subscriptions),
            )
        ),
    )
    return HourlyPrices(book)
