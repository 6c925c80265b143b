"""The caller's business profile and logo: what its invoices say about it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.kit.errors import InvalidInput
from meterplane.tenancy import profile as service

router = APIRouter(prefix="/v1/provider", tags=["provider"])


class ProfileIn(BaseModel):
    """The whole profile: a field left out or null is cleared."""

    model_config = ConfigDict(extra="forbid")
    legal_name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=2000)
    tax_id: str | None = Field(default=None, max_length=100)
    support_email: EmailStr | None = None


class ProfileOut(BaseModel):
    provider_id: str
    name: str
    legal_name: str | None
    address: str | None
    tax_id: str | None
    support_email: str | None
    logo_content_type: str | None
    has_logo: bool


def profile_out(profile: service.Profile) -> ProfileOut:
    return ProfileOut(
        provider_id=profile.provider_id,
        name=profile.name,
        legal_name=profile.legal_name,
        address=profile.address,
        tax_id=profile.tax_id,
        support_email=profile.support_email,
        logo_content_type=profile.logo_content_type,
        has_logo=profile.has_logo,
    )


@router.get("/profile")
def get_profile(caller: Admin, factory: Factory) -> ProfileOut:
    with unit_of_work(factory) as session:
        return profile_out(service.get_profile(session, caller.provider_id))


@router.put("/profile")
def put_profile(body: ProfileIn, caller: Admin, factory: Factory, now: Now) -> ProfileOut:
    with unit_of_work(factory) as session:
        profile = service.update_profile(
            session,
            caller.provider_id,
            legal_name=body.legal_name,
            address=body.address,
            tax_id=body.tax_id,
            support_email=str(body.support_email) if body.support_email else None,
            actor=caller.actor,
            now=now,
        )
        return profile_out(profile)


async def _read_logo(request: Request) -> bytes:
    """The raw request body, refused as soon as it passes the size limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > service.LOGO_MAX_BYTES:
        raise InvalidInput(
            f"logo is {declared} bytes; the limit is {service.LOGO_MAX_BYTES} bytes",
            code="logo_too_large",
            limit=service.LOGO_MAX_BYTES,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > service.LOGO_MAX_BYTES:
            raise InvalidInput(
                f"logo is larger than the limit of {service.LOGO_MAX_BYTES} bytes",
                code="logo_too_large",
                limit=service.LOGO_MAX_BYTES,
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.put(
    "/logo",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"The image itself, at most {service.LOGO_MAX_BYTES} bytes.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in service.LOGO_TYPES
            },
        }
    },
)
def put_logo(
    caller: Admin,
    data: Annotated[bytes, Depends(_read_logo)],
    request: Request,
    factory: Factory,
    now: Now,
) -> ProfileOut:
    """Upload the logo as the raw request body with Content-Type image/png or image/svg+xml."""
    content_type = request.headers.get("content-type")
    if not content_type:
        raise InvalidInput(
            f"send the logo with Content-Type {' or '.join(service.LOGO_TYPES)}",
            code="unsupported_logo_type",
        )
    with unit_of_work(factory) as session:
        profile = service.set_logo(
            session, caller.provider_id, data, content_type, actor=caller.actor, now=now
        )
        return profile_out(profile)


@router.get(
    "/logo",
    response_class=Response,
    responses={200: {"content": {media: {} for media in service.LOGO_TYPES}}},
)
def get_logo(caller: Admin, factory: Factory) -> Response:
    with unit_of_work(factory) as session:
        logo = service.get_logo(session, caller.provider_id)
    return Response(
        content=logo.data,
        media_type=logo.content_type,
        headers={
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
            # An SVG opened directly must not run anything even if a check were ever missed.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )


@router.delete("/logo")
def delete_logo(caller: Admin, factory: Factory, now: Now) -> ProfileOut:
    with unit_of_work(factory) as session:
        profile = service.delete_logo(session, caller.provider_id, actor=caller.actor, now=now)
        return profile_out(profile)
