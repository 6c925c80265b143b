"""The scheduled export: every provider with an enabled target, one after the other."""

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.export.models import ExportTarget
from meterplane.export.runner import ExportReport, SinkFactory, run_provider
from meterplane.export.service import make_sink
from meterplane.kit.db import transaction
from meterplane.kit.errors import MeterplaneError
from meterplane.settings import Settings, get_settings

log = logging.getLogger("meterplane.export")


def run_due(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    settings: Settings | None = None,
    sink_factory: SinkFactory = make_sink,
) -> ExportReport:
    """Export every closed hour not yet written and every revision due; never skips an hour.

    A provider whose last run failed waits for its backoff (1 min doubling to 1 h), then
    retries the same hour. Errors are stored per provider and summed in the report.
    """
    settings = settings or get_settings()
    with transaction(factory) as session:
        providers = list(
            session.scalars(
                select(ExportTarget.provider_id)
                .where(ExportTarget.enabled.is_(True))
                .order_by(ExportTarget.provider_id)
            )
        )
    report = ExportReport()
    for provider_id in providers:
        try:
            result = run_provider(
                factory,
                provider_id,
                settings=settings,
                now=now,
                sink_factory=sink_factory,
                respect_backoff=True,
            )
        except MeterplaneError as exc:  # e.g. the target was removed meanwhile
            log.warning("export for %s failed: %s", provider_id, exc.message)
            report.errors.append(f"{provider_id}: {exc.code}: {exc.message}")
            continue
        for error in result.errors:
            log.warning("export: %s", error)
        report.add(result)
    return report
