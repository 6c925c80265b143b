"""The ingest benchmark's ceiling: a bare FastAPI endpoint that only parses a batch.

Same sample shape as Meterplane's ``SampleIn`` (Decimal values, aware datetimes), parsed by
FastAPI/Pydantic from the same JSON body; it answers the count and stores nothing.
"""

from decimal import Decimal

from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel


class Sample(BaseModel):
    instance_id: str
    node_id: str
    timestamp: AwareDatetime
    cpu_cores: Decimal
    memory_gib: Decimal
    storage_gib: Decimal


class Batch(BaseModel):
    samples: list[Sample]


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/usage/samples")
    async def samples(batch: Batch) -> dict[str, int]:
        return {"accepted": len(batch.samples)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
