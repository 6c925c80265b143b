"""Imports every domain's models so ``Base.metadata`` is complete (Alembic, test schema)."""

from meterplane.audit import models as audit_models
from meterplane.catalog import models as catalog_models
from meterplane.customers import models as customer_models
from meterplane.export import models as export_models
from meterplane.invoicing import models as invoicing_models
from meterplane.kit.db import Base
from meterplane.metering import models as metering_models
from meterplane.notifications import models as notification_models
from meterplane.payments import models as payment_models
from meterplane.portal import models as portal_models
from meterplane.tenancy import models as tenancy_models
from meterplane.users import models as user_models

__all__ = [
    "Base",
    "audit_models",
    "catalog_models",
    "customer_models",
    "export_models",
    "invoicing_models",
    "metering_models",
    "notification_models",
    "payment_models",
    "portal_models",
    "tenancy_models",
    "user_models",
]
