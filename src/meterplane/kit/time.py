"""The one clock, and the time arithmetic usage depends on."""

from datetime import UTC, datetime, timedelta

INTERVAL_SECONDS = 300
HOUR_SECONDS = 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


def ensure_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to UTC; naive datetimes are a programming error here."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC)


def floor_to(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def hour_floor(moment: datetime) -> datetime:
    return floor_to(moment, HOUR_SECONDS)


def day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_floor(moment: datetime) -> datetime:
    return day_floor(moment).replace(day=1)


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def hours_between(start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(hours=1))
