"""The provider's business profile and logo, printed on its invoices.

A logo ends up inside PDFs and web pages, so it is checked by its content, not by what the
uploader claims: a PNG must be a well-formed chunk stream, an SVG a plain XML document whose
root is ``<svg>``, without DOCTYPE or entities (no entity expansion attacks), without scripts
or event handlers, and without references to anything outside itself.
"""

import re
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.parsers import expat

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.tenancy.models import Provider
from meterplane.tenancy.service import get_provider

LOGO_MAX_BYTES = 512 * 1024
PNG = "image/png"
SVG = "image/svg+xml"
LOGO_TYPES = (PNG, SVG)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Formats people try to upload that we recognise, to say "unsupported" rather than "broken".
_OTHER_IMAGE_MAGIC = (
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",  # JPEG
    b"BM",  # BMP
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"\x00\x00\x01\x00",  # ICO
    b"%PDF-",
)
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
# Elements that run code or embed another document.
_FORBIDDEN_ELEMENTS = frozenset(
    {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener"}
)
_SAFE_HREF = re.compile(r"^\s*(#|data:image/(png|jpeg|gif|webp);base64,)", re.IGNORECASE)
_SCRIPT_URL = re.compile(r"(java|vb)script\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Profile:
    provider_id: str
    name: str
    legal_name: str | None
    address: str | None
    tax_id: str | None
    support_email: str | None
    logo_content_type: str | None

    @property
    def has_logo(self) -> bool:
        return self.logo_content_type is not None

    @property
    def display_name(self) -> str:
        """The name printed on invoices: the legal name when set."""
        return self.legal_name or self.name


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str


def _profile(provider: Provider) -> Profile:
    return Profile(
        provider_id=provider.id,
        name=provider.name,
        legal_name=provider.legal_name,
        address=provider.address,
        tax_id=provider.tax_id,
        support_email=provider.support_email,
        logo_content_type=provider.logo_content_type,
    )


def _fields(provider: Provider) -> dict[str, Any]:
    return {
        "legal_name": provider.legal_name,
        "address": provider.address,
        "tax_id": provider.tax_id,
        "support_email": provider.support_email,
    }


def _clean(value: str | None, *, limit: int, field: str) -> str | None:
    if value is None:
        return None
    value = value.replace("\r\n", "\n").strip()
    if not value:
        return None
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", code="invalid_profile")
    return value


def get_profile(session: Session, provider_id: str) -> Profile:
    """The provider's business profile (without the logo's bytes)."""
    return _profile(get_provider(session, provider_id))


def update_profile(
    session: Session,
    provider_id: str,
    *,
    legal_name: str | None,
    address: str | None,
    tax_id: str | None,
    support_email: str | None,
    actor: str,
    now: datetime,
) -> Profile:
    """Replace the business profile; blank values clear a field."""
    provider = get_provider(session, provider_id)
    email = _clean(support_email, limit=320, field="support_email")
    if email is not None:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidInput(
                f"support_email is not a valid email address: {exc}", code="invalid_email"
            ) from exc
    before = _fields(provider)
    provider.legal_name = _clean(legal_name, limit=200, field="legal_name")
    provider.address = _clean(address, limit=2000, field="address")
    provider.tax_id = _clean(tax_id, limit=100, field="tax_id")
    provider.support_email = email
    after = _fields(provider)
    if after != before:
        audit.record(
            session,
            provider_id,
            actor=actor,
            action="provider.profile_updated",
            object_type="provider",
            object_id=provider_id,
            before=before,
            after=after,
            now=now,
        )
    session.flush()
    return _profile(provider)


def get_logo(session: Session, provider_id: str) -> Logo:
    """The logo's bytes and content type, or NotFound."""
    row = session.execute(
        select(Provider.logo, Provider.logo_content_type).where(Provider.id == provider_id)
    ).one_or_none()
    if row is None or row.logo is None or row.logo_content_type is None:
        raise NotFound("this provider has no logo", code="logo_not_found")
    return Logo(data=row.logo, content_type=row.logo_content_type)


def set_logo(
    session: Session,
    provider_id: str,
    data: bytes,
    content_type: str | None,
    *,
    actor: str,
    now: datetime,
) -> Profile:
    """Store a PNG or SVG logo after checking its content; ``content_type`` None means sniff."""
    provider = get_provider(session, provider_id)
    kind = validate_logo(data, content_type)
    before = {"logo_content_type": provider.logo_content_type}
    provider.logo = data
    provider.logo_content_type = kind
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="provider.logo_set",
        object_type="provider",
        object_id=provider_id,
        before=before,
        after={"logo_content_type": kind, "logo_bytes": len(data)},
        now=now,
    )
    session.flush()
    return _profile(provider)


def delete_logo(session: Session, provider_id: str, *, actor: str, now: datetime) -> Profile:
    """Remove the logo; NotFound when there is none."""
    provider = get_provider(session, provider_id)
    if provider.logo_content_type is None:
        raise NotFound("this provider has no logo", code="logo_not_found")
    before = {"logo_content_type": provider.logo_content_type}
    provider.logo = None
    provider.logo_content_type = None
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="provider.logo_deleted",
        object_type="provider",
        object_id=provider_id,
        before=before,
        after=None,
        now=now,
    )
    session.flush()
    return _profile(provider)


def validate_logo(data: bytes, content_type: str | None) -> str:
    """The logo's content type, judged by its bytes; InvalidInput when it is not acceptable."""
    declared = None
    if content_type is not None:
        declared = content_type.split(";", 1)[0].strip().lower()
        if declared not in LOGO_TYPES:
            raise InvalidInput(
                f"logo type '{declared}' is not supported: upload {PNG} or {SVG}",
                code="unsupported_logo_type",
            )
    if len(data) > LOGO_MAX_BYTES:
        raise InvalidInput(
            f"logo is {len(data)} bytes; the limit is {LOGO_MAX_BYTES} bytes",
            code="logo_too_large",
            limit=LOGO_MAX_BYTES,
        )
    if not data:
        raise InvalidInput("logo is empty", code="invalid_logo")
    if data.startswith(_PNG_MAGIC):
        actual = PNG
    elif _looks_like_xml(data):
        actual = SVG
    elif data.startswith(_OTHER_IMAGE_MAGIC) or data[8:12] in (b"WEBP", b"avif", b"heic"):
        raise InvalidInput(
            f"only {PNG} and {SVG} logos are supported", code="unsupported_logo_type"
        )
    elif declared is None:
        raise InvalidInput(f"logo is neither {PNG} nor {SVG}", code="unsupported_logo_type")
    else:
        raise InvalidInput(f"logo content is not a valid {declared} image", code="invalid_logo")
    if declared is not None and declared != actual:
        raise InvalidInput(
            f"logo was sent as {declared} but its content is {actual}", code="invalid_logo"
        )
    if actual == PNG:
        _check_png(data)
    else:
        _check_svg(data)
    return actual


def _looks_like_xml(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<")


def _check_png(data: bytes) -> None:
    """Walk the chunks: IHDR first with a sane size, every CRC right, IEND last."""
    position = len(_PNG_MAGIC)
    first = True
    while True:
        if position + 8 > len(data):
            raise InvalidInput("PNG logo is truncated", code="invalid_logo")
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        end = position + 8 + length + 4
        if end > len(data):
            raise InvalidInput("PNG logo is truncated", code="invalid_logo")
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(chunk_type + body) != crc:
            raise InvalidInput("PNG logo is corrupt (bad chunk checksum)", code="invalid_logo")
        if first:
            if chunk_type != b"IHDR" or length != 13:
                raise InvalidInput("PNG logo has no header chunk", code="invalid_logo")
            width, height = struct.unpack(">II", body[:8])
            if not (0 < width <= 10_000 and 0 < height <= 10_000):
                raise InvalidInput(
                    f"PNG logo is {width}×{height} pixels; at most 10000×10000",
                    code="invalid_logo",
                )
            first = False
        if chunk_type == b"IEND":
            return
        position = end


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _split(name: str) -> tuple[str, str]:
    namespace, _, local = name.rpartition(" ")
    return namespace, local


def _check_svg(data: bytes) -> None:
    """Parse with expat, refusing DTDs, entities, processing instructions and active content."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0

    def refuse(reason: str) -> Any:
        raise _Refused(reason)

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        namespace, local = _split(name)
        if depth == 0 and (local != "svg" or namespace not in ("", _SVG_NS)):
            raise _Refused(f"the root element is <{local}>, not <svg>")
        depth += 1
        if local.lower() in _FORBIDDEN_ELEMENTS:
            raise _Refused(f"<{local}> elements are not allowed")
        for attribute, value in attributes.items():
            attr_ns, attr = _split(attribute)
            if attr.lower().startswith("on"):
                raise _Refused(f"event handler attributes ({attr}) are not allowed")
            if attr == "href" and attr_ns in ("", _XLINK_NS) and not _SAFE_HREF.match(value):
                raise _Refused("links to other documents or resources are not allowed")
            if _SCRIPT_URL.search(value):
                raise _Refused("script URLs are not allowed")

    def text(content: str) -> None:
        if _SCRIPT_URL.search(content):
            raise _Refused("script URLs are not allowed")

    parser.StartDoctypeDeclHandler = lambda *_: refuse("a DOCTYPE is not allowed")
    parser.EntityDeclHandler = lambda *_: refuse("entity declarations are not allowed")
    parser.ExternalEntityRefHandler = lambda *_: refuse("external entities are not allowed")
    parser.ProcessingInstructionHandler = lambda *_: refuse(
        "processing instructions are not allowed"
    )
    parser.StartElementHandler = start
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise InvalidInput(f"SVG logo refused: {exc.reason}", code="invalid_logo") from exc
    except expat.ExpatError as exc:
        raise InvalidInput(f"SVG logo is not well-formed XML: {exc}", code="invalid_logo") from exc
    if depth == 0:
        raise InvalidInput("SVG logo has no <svg> element", code="invalid_logo")
