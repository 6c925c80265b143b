import json
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from meterplane.api.deps import Admin, AppSettings, Factory, Ingest, Now, unit_of_work
from meterplane.kit.errors import InvalidInput
from meterplane.metering import ingest, queries
from meterplane.metering.codecs import DecodedBatch, decode_json_batch, decode_ndjson_lines
from meterplane.metering.schemas import (
    Granularity,
    IngestResult,
    RejectionOut,
    RejectionPage,
    UsageReport,
)
from meterplane.notifications.service import notify

router = APIRouter(prefix="/v1/usage", tags=["usage"])

MAX_BODY_BYTES = 32 * 1024 * 1024

_SAMPLES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["samples"],
                    "properties": {
                        "samples": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/SampleIn"},
                        }
                    },
                }
            },
            "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/SampleIn"}},
        },
    }
}


@router.post("/samples", openapi_extra=_SAMPLES_BODY)
async def post_samples(
    request: Request, caller: Ingest, factory: Factory, now: Now, settings: AppSettings
) -> IngestResult:
    """Ingest a batch: good rows are kept, each bad row is answered with its reason."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"request body exceeds {MAX_BODY_BYTES} bytes", code="body_too_large")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    batch: DecodedBatch
    if content_type in ("application/x-ndjson", "application/jsonl"):
        batch = decode_ndjson_lines(body.splitlines(), max_samples=settings.max_batch_samples)
    elif content_type in ("application/json", ""):
        batch = decode_json_batch(body, max_samples=settings.max_batch_samples)
    else:
        raise InvalidInput(
            f"unsupported content type '{content_type}'; "
            "send application/json or application/x-ndjson",
            code="unsupported_media_type",
        )
    policy = ingest.IngestPolicy.from_settings(settings)

    def _ingest() -> IngestResult:
        with unit_of_work(factory) as session:
            result = ingest.ingest_samples(
                session, caller.provider_id, batch, now=now, policy=policy
            )
            if result.rejected:
                notify(
                    session,
                    caller.provider_id,
                    "usage.rejected",
                    subject_id=result.batch_id,
                    data={
                        "batch_id": result.batch_id,
                        "accepted": result.accepted,
                        "rejected": len(result.rejected),
                        "codes": dict(Counter(row.code for row in result.rejected)),
                    },
                    now=now,
                )
            return result

    return await run_in_threadpool(_ingest)


@router.get("/rejections")
def list_rejections(
    caller: Admin,
    factory: Factory,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(description="cursor: next_cursor of the last page")] = None,
    code: str | None = None,
    instance_id: str | None = None,
) -> RejectionPage:
    with unit_of_work(factory) as session:
        items = ingest.list_rejections(
            session,
            caller.provider_id,
            limit=limit,
            before_id=before,
            code=code,
            instance_id=instance_id,
        )
        return RejectionPage(
            data=[
                RejectionOut(
                    id=item.id,
                    batch_id=item.batch_id,
                    index=item.row_index,
                    code=item.code,
                    message=item.message,
                    instance_id=item.instance_id,
                    payload=json.loads(item.payload),
                    received_at=item.received_at,
                )
                for item in items
            ],
            next_cursor=items[-1].id if len(items) == limit else None,
        )


@router.get("", response_model_by_alias=True)
def get_usage(
    caller: Admin,
    factory: Factory,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
    customer_id: str | None = None,
    instance_id: str | None = None,
    granularity: Granularity = "day",
    dimension: str | None = None,
) -> UsageReport:
    """Usage in unit-hours; an hour counts when its start lies in [from, to)."""
    with unit_of_work(factory) as session:
        return queries.usage_report(
            session,
            caller.provider_id,
            customer_id=customer_id,
            instance_id=instance_id,
            start=start,
            end=end,
            granularity=granularity,
            dimension=dimension,
        )
