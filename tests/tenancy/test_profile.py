"""The provider's business profile and logo through the API, on SQLite and PostgreSQL."""

import json
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from meterplane.audit.models import AuditEntry
from meterplane.cli import context
from meterplane.cli import profile as profile_cli
from meterplane.tenancy.profile import LOGO_MAX_BYTES
from tests.conftest import Tenant


def png(width: int = 96, height: int = 96, *, padding: bytes = b"") -> bytes:
    """A real RGBA PNG: a blue disc with a white ring on transparent; ``padding`` adds bulk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    cx, cy, r = width / 2, height / 2, min(width, height) / 2 - 1
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            d = ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) ** 0.5 / r
            if d > 1:
                rows += b"\x00\x00\x00\x00"
            elif 0.45 < d < 0.62:
                rows += b"\xff\xff\xff\xff"
            else:
                rows += bytes((37, 99, 235, 255))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    extra = chunk(b"tEXt", b"Comment\x00" + padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    b'width="160" height="40" viewBox="0 0 160 40">'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#2563eb"/>'
    b'<stop offset="1" stop-color="#0ea5e9"/></linearGradient></defs>'
    b'<rect width="40" height="40" rx="8" fill="url(#g)"/>'
    b'<use xlink:href="#g"/>'
    b'<text x="50" y="28" font-family="DejaVu Sans" font-size="20" fill="#111827">Acme</text>'
    b"</svg>"
)


def put_logo(client: TestClient, tenant: Tenant, body: bytes, content_type: str) -> Response:
    return client.put(
        "/v1/provider/logo", content=body, headers={**tenant.admin, "Content-Type": content_type}
    )


def test_profile_round_trip(client: TestClient, tenant: Tenant) -> None:
    empty = client.get("/v1/provider/profile", headers=tenant.admin)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {
        "provider_id": tenant.provider_id,
        "name": "Acme Cloud",
        "legal_name": None,
        "address": None,
        "tax_id": None,
        "support_email": None,
        "logo_content_type": None,
        "has_logo": False,
    }
    body = {
        "legal_name": "Acme Cloud GmbH",
        "address": "Hauptstraße 1\n10115 Berlin\nGermany",
        "tax_id": "DE123456789",
        "support_email": "billing@acme.example",
    }
    put = client.put("/v1/provider/profile", json=body, headers=tenant.admin)
    assert put.status_code == 200, put.text
    got = client.get("/v1/provider/profile", headers=tenant.admin).json()
    assert {k: got[k] for k in body} == body
    # PUT replaces the whole profile: what is left out is cleared.
    put = client.put("/v1/provider/profile", json={"legal_name": "Acme"}, headers=tenant.admin)
    assert put.json()["tax_id"] is None and put.json()["legal_name"] == "Acme"


def test_profile_is_audited(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session]
) -> None:
    body = {"legal_name": "Acme Cloud GmbH", "tax_id": "DE1"}
    assert client.put("/v1/provider/profile", json=body, headers=tenant.admin).status_code == 200
    assert put_logo(client, tenant, png(), "image/png").status_code == 200
    assert client.delete("/v1/provider/logo", headers=tenant.admin).status_code == 200
    with factory() as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.provider_id == tenant.provider_id)
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["provider.profile_updated", "provider.logo_set", "provider.logo_deleted"]


@pytest.mark.parametrize(
    "body",
    [
        {"support_email": "not an email"},
        {"legal_name": "x" * 201},
        {"unknown": "field"},
    ],
)
def test_profile_refuses_bad_input(client: TestClient, tenant: Tenant, body: object) -> None:
    response = client.put("/v1/provider/profile", json=body, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_profile_needs_an_admin_key(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/v1/provider/profile", headers=tenant.ingest)
    assert response.status_code == 403
    assert client.get("/v1/provider/profile").status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(png(), "image/png"), (SVG, "image/svg+xml"), (SVG, "image/svg+xml; charset=utf-8")],
    ids=["png", "svg", "svg-charset"],
)
def test_logo_accepted_and_served(
    client: TestClient, tenant: Tenant, body: bytes, content_type: str
) -> None:
    response = put_logo(client, tenant, body, content_type)
    assert response.status_code == 200, response.text
    kind = content_type.split(";")[0]
    assert response.json()["logo_content_type"] == kind
    assert response.json()["has_logo"] is True
    served = client.get("/v1/provider/logo", headers=tenant.admin)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith(kind)
    assert served.content == body
    assert client.delete("/v1/provider/logo", headers=tenant.admin).json()["has_logo"] is False
    missing = client.get("/v1/provider/logo", headers=tenant.admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "logo_not_found"
    again = client.delete("/v1/provider/logo", headers=tenant.admin)
    assert again.json()["error"]["code"] == "logo_not_found"


GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def _svg(inner: bytes, attributes: bytes = b"") -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" ' + attributes + b">" + inner + b"</svg>"


REFUSED = {
    "gif": (GIF, "image/gif", "unsupported_logo_type"),
    "gif-claiming-png": (GIF, "image/png", "unsupported_logo_type"),
    "jpeg": (JPEG, "image/jpeg", "unsupported_logo_type"),
    "jpeg-claiming-svg": (JPEG, "image/svg+xml", "unsupported_logo_type"),
    "octet-stream": (png(), "application/octet-stream", "unsupported_logo_type"),
    "garbage": (b"\x00\x01garbage" * 10, "image/png", "invalid_logo"),
    "empty": (b"", "image/png", "invalid_logo"),
    "truncated-png": (png()[:60], "image/png", "invalid_logo"),
    "corrupt-png": (png()[:40] + b"\x00" + png()[41:], "image/png", "invalid_logo"),
    "svg-claiming-png": (SVG, "image/png", "invalid_logo"),
    "png-claiming-svg": (png(), "image/svg+xml", "invalid_logo"),
    "oversized": (png(padding=b"x" * LOGO_MAX_BYTES), "image/png", "logo_too_large"),
    "svg-script": (_svg(b"<script>alert(1)</script>"), "image/svg+xml", "invalid_logo"),
    "svg-onload": (_svg(b"<rect/>", b'onload="alert(1)"'), "image/svg+xml", "invalid_logo"),
    "svg-onclick-nested": (
        _svg(b'<g><rect onclick="x()"/></g>'),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-javascript-href": (
        _svg(b'<a href="javascript:alert(1)"><rect/></a>'),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-external-image": (
        _svg(b'<image href="http://169.254.169.254/latest" width="1" height="1"/>'),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-foreign-object": (
        _svg(b"<foreignObject><p>hi</p></foreignObject>"),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-doctype": (
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">' + _svg(b"<rect/>"),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + _svg(b"<text>&b;</text>"),
        "image/svg+xml",
        "invalid_logo",
    ),
    "svg-xml-stylesheet": (
        b'<?xml-stylesheet href="http://evil.example/x.css"?>' + _svg(b"<rect/>"),
        "image/svg+xml",
        "invalid_logo",
    ),
    "not-svg-root": (b"<html><body>hi</body></html>", "image/svg+xml", "invalid_logo"),
    "malformed-svg": (
        b"<svg xmlns='http://www.w3.org/2000/svg'><rect>",
        "image/svg+xml",
        "invalid_logo",
    ),
}


@pytest.mark.parametrize(("body", "content_type", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_logo_refused(
    client: TestClient, tenant: Tenant, body: bytes, content_type: str, code: str
) -> None:
    response = put_logo(client, tenant, body, content_type)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    profile = client.get("/v1/provider/profile", headers=tenant.admin).json()
    assert profile["has_logo"] is False


def test_logo_without_content_type_is_refused(client: TestClient, tenant: Tenant) -> None:
    response = client.put("/v1/provider/logo", content=png(), headers=tenant.admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_logo_type"


def test_oversized_logo_is_refused_while_streaming(client: TestClient, tenant: Tenant) -> None:
    """No Content-Length: the body is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(LOGO_MAX_BYTES // 65536 + 2):
            yield b"\x00" * 65536

    response = client.put(
        "/v1/provider/logo",
        content=chunks(),
        headers={**tenant.admin, "Content-Type": "image/png"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "logo_too_large"


def test_providers_see_only_their_own_profile(
    client: TestClient, tenant: Tenant, make_tenant: Callable[[str], Tenant]
) -> None:
    body = {"legal_name": "Acme Cloud GmbH", "tax_id": "DE123456789"}
    assert client.put("/v1/provider/profile", json=body, headers=tenant.admin).status_code == 200
    assert put_logo(client, tenant, png(), "image/png").status_code == 200

    other = make_tenant("Initech")
    theirs = client.get("/v1/provider/profile", headers=other.admin).json()
    assert theirs["provider_id"] == other.provider_id
    assert theirs["name"] == "Initech"
    assert theirs["legal_name"] is None and theirs["tax_id"] is None
    assert theirs["has_logo"] is False
    assert client.get("/v1/provider/logo", headers=other.admin).status_code == 404
    assert client.delete("/v1/provider/logo", headers=other.admin).status_code == 404

    # Their changes stay theirs.
    client.put("/v1/provider/profile", json={"legal_name": "Initech LLC"}, headers=other.admin)
    mine = client.get("/v1/provider/profile", headers=tenant.admin).json()
    assert mine["legal_name"] == "Acme Cloud GmbH" and mine["has_logo"] is True


def test_profile_cli(
    tenant: Tenant,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``meterplane profile``, mounted here as it is in the real command."""
    monkeypatch.setattr(context, "session_factory", lambda: factory)
    monkeypatch.setenv("METERPLANE_PROVIDER_ID", tenant.provider_id)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(profile_cli.app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    run("set", "--legal-name", "Acme Cloud GmbH", "--address", "Hauptstraße 1 | 10115 Berlin")
    run("set", "--tax-id", "DE123456789", "--support-email", "billing@acme.example")
    shown = json.loads(run("show", "--json"))
    assert shown["legal_name"] == "Acme Cloud GmbH"
    assert shown["address"] == "Hauptstraße 1\n10115 Berlin"
    assert shown["tax_id"] == "DE123456789"
    assert "invalid_email" in run("set", "--support-email", "nope", code=1)

    (tmp_path / "logo.svg").write_bytes(SVG)
    assert "image/svg+xml" in run("logo", str(tmp_path / "logo.svg"))
    run("export-logo", str(tmp_path / "back.svg"))
    assert (tmp_path / "back.svg").read_bytes() == SVG
    (tmp_path / "logo.gif").write_bytes(GIF)
    assert "unsupported_logo_type" in run("logo", str(tmp_path / "logo.gif"), code=1)
    assert "logo removed" in run("remove-logo")
    assert json.loads(run("show", "--json"))["has_logo"] is False
