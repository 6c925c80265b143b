"""Invoice PDFs: rendered from invoice rows written here directly, read back with poppler."""

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from meterplane.cli import context
from meterplane.cli.invoice_pdf import pdf as pdf_command
from meterplane.customers.models import Customer
from meterplane.invoicing.models import Invoice, InvoiceInstanceLine, InvoiceLine
from meterplane.invoicing.pdf import money, quantity
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.money import round_money
from meterplane.tenancy.models import Provider
from tests.conftest import ARTIFACTS, Tenant
from tests.tenancy.test_profile import SVG, png

D = Decimal
OCTOBER = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))

# (kind, usage period, plan, dimension, unit, quantity, unit price)
USD_LINES = [
    ("usage", "2026-10", "Standard", "cpu_cores", "core", D("1488"), D("0.04")),
    ("usage", "2026-10", "Standard", "memory_gib", "GiB", D("5952.5"), D("0.005")),
    ("usage", "2026-10", "Standard", "storage_gib", "GiB", D("7440000"), D("0.0002")),
    ("usage", "2026-10", "Premium", "replicas", "replica", D("100"), D("0.123456789012")),
    ("adjustment", "2026-09", "Standard", "cpu_cores", "core", D("12.5"), D("0.04")),
]
INSTANCES = [
    ("pg-prod-eu-1", "ext-pg-prod-eu-1", "aws", "eu-west-1"),
    ("pg-prod-us-2", "ext-pg-prod-us-2", "gcp", "us-central1"),
    ("pg-staging-3", None, "azure", "westeurope"),
]


@dataclass
class Invoices:
    issued_id: str
    draft_id: str
    long_id: str


def _lines(
    invoice: Invoice, currency: str, rows: list[tuple[str, str, str, str, str, Decimal, Decimal]]
) -> None:
    invoice.lines = [
        InvoiceLine(
            provider_id=invoice.provider_id,
            position=index,
            kind=kind,
            usage_period=period,
            plan_id=f"plan_{plan.lower()}",
            plan_name=plan,
            dimension=dimension,
            unit=unit,
            quantity=qty,
            unit_price=price,
            amount=round_money(qty * price, currency),
        )
        for index, (kind, period, plan, dimension, unit, qty, price) in enumerate(rows)
    ]
    invoice.subtotal = sum((line.amount for line in invoice.lines), D(0))


def _instances(invoice: Invoice, currency: str, count: int) -> None:
    rows = []
    for index in range(count):
        instance_id, external, cloud, region = INSTANCES[index % len(INSTANCES)]
        if index >= len(INSTANCES):
            instance_id = f"{instance_id}-{index:03d}"
        qty = D(744) + index
        rows.append(
            InvoiceInstanceLine(
                provider_id=invoice.provider_id,
                position=index,
                instance_id=instance_id,
                external_billing_id=external,
                cloud=cloud,
                region=region,
                plan_id="plan_standard",
                dimension="cpu_cores",
                quantity=qty,
                unit_price=D("0.04"),
                amount=round_money(qty * D("0.04"), currency),
            )
        )
    invoice.instance_lines = rows


def _invoice(
    session: Session,
    provider_id: str,
    customer_id: str,
    invoice_id: str,
    currency: str,
    *,
    number: str | None,
    now: datetime,
) -> Invoice:
    invoice = Invoice(
        id=invoice_id,
        provider_id=provider_id,
        customer_id=customer_id,
        period="2026-10",
        period_start=OCTOBER[0],
        period_end=OCTOBER[1],
        status=InvoiceStatus.issued if number else InvoiceStatus.draft,
        currency=currency,
        subtotal=D(0),
        tax_amount=D(0),
        total=D(0),
        number=number,
        created_at=now,
        computed_at=now,
        issued_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC) if number else None,
        due_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC) if number else None,
    )
    session.add(invoice)
    return invoice


@pytest.fixture
def invoices(tenant: Tenant, factory: sessionmaker[Session]) -> Invoices:
    now = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with factory() as session, session.begin():
        provider = session.get_one(Provider, tenant.provider_id)
        provider.legal_name = "Acme Cloud GmbH"
        provider.address = "Hauptstraße 1\n10115 Berlin\nGermany"
        provider.tax_id = "DE123456789"
        provider.support_email = "billing@acme.example"
        provider.logo = png(128, 128)
        provider.logo_content_type = "image/png"
        globex = Customer(
            id="cus_globex",
            provider_id=tenant.provider_id,
            name="Globex Corporation",
            email="ap@globex.example",
            external_billing_id="GX-1001",
            address="742 Evergreen Terrace\nSpringfield, OR 97403\nUnited States",
            created_at=now,
        )
        umbrella = Customer(
            id="cus_umbrella",
            provider_id=tenant.provider_id,
            name="Umbrella KK",
            email="keiri@umbrella.example",
            external_billing_id="UM-7",
            address="1-1 Marunouchi\nChiyoda-ku, Tokyo 100-0005\nJapan",
            created_at=now,
        )
        initech = Customer(
            id="cus_initech",
            provider_id=tenant.provider_id,
            name="Initech",
            email="bill@initech.example",
            created_at=now,
        )
        session.add_all([globex, umbrella, initech])
        session.flush()

        issued = _invoice(
            session, tenant.provider_id, globex.id, "inv_issued", "USD",
            number="INV-2026-000042", now=now,
        )  # fmt: skip
        _lines(issued, "USD", USD_LINES)
        _instances(issued, "USD", 3)
        issued.tax_name = "VAT"
        issued.tax_percentage = D("19")
        issued.tax_amount = round_money(issued.subtotal * D("0.19"), "USD")
        issued.total = issued.subtotal + issued.tax_amount

        draft = _invoice(
            session, tenant.provider_id, umbrella.id, "inv_draft", "JPY", number=None, now=now
        )
        _lines(
            draft,
            "JPY",
            [
                ("usage", "2026-10", "Standard", "cpu_cores", "core", D("720"), D("15")),
                ("usage", "2026-10", "Standard", "memory_gib", "GiB", D("2880"), D("0.5")),
            ],
        )
        _instances(draft, "JPY", 1)
        draft.total = draft.subtotal

        long = _invoice(
            session, tenant.provider_id, initech.id, "inv_long", "USD",
            number="INV-2026-000043", now=now,
        )  # fmt: skip
        _lines(long, "USD", USD_LINES[:2] * 6)
        _instances(long, "USD", 70)
        long.total = long.subtotal
    return Invoices("inv_issued", "inv_draft", "inv_long")


def _pdf_text(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    )
    return result.stdout


def _fetch(client: TestClient, tenant: Tenant, invoice_id: str) -> bytes:
    response = client.get(f"/v1/invoices/{invoice_id}/pdf", headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    return response.content


def _save(pdf: bytes, name: str) -> Path:
    """The PDF and a PNG of its first page, kept for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(path),
         str(ARTIFACTS / name)],
        check=True,
    )  # fmt: skip
    return path


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_issued_invoice_pdf(
    client: TestClient, tenant: Tenant, invoices: Invoices, backend: str
) -> None:
    response = client.get(f"/v1/invoices/{invoices.issued_id}/pdf", headers=tenant.admin)
    assert response.headers["content-disposition"] == 'inline; filename="INV-2026-000042.pdf"'
    pdf = _fetch(client, tenant, invoices.issued_id)
    path = _save(pdf, f"invoice-issued-{backend}")
    text = _pdf_text(pdf, path)
    flat = _squash(text)

    for expected in [
        "Acme Cloud GmbH",
        "Hauptstraße 1",
        "10115 Berlin",
        "DE123456789",
        "billing@acme.example",
        "Globex Corporation",
        "742 Evergreen Terrace",
        "Springfield, OR 97403",
        "GX-1001",
        "INV-2026-000042",
        "Issued",
        "October 2026",
        "From 2026-10-01 00:00 UTC",
        "before 2026-11-01 00:00 UTC",
        "Nov 2, 2026",
        "Dec 2, 2026",
        "Adjustment for 2026-09",
        "CPU cores",
        "core-hours",
        "VAT (19%)",
    ]:
        assert expected in flat, expected
    assert "DRAFT" not in text

    # Each line's quantity, unit price and amount.
    for row in [
        ("1,488", "$0.04", "$59.52"),
        ("5,952.5", "$0.005", "$29.76"),
        ("7,440,000", "$0.0002", "$1,488.00"),
        ("100", "$0.123456789012", "$12.35"),
        ("12.5", "$0.04", "$0.50"),
    ]:
        assert re.search(r"\s+".join(re.escape(cell) for cell in row), text), row
    # $59.52 + $29.76 + $1,488.00 + $12.35 + $0.50 = $1,590.13; VAT 19% = $302.12.
    assert re.search(r"Subtotal\s+\$1,590\.13", text)
    assert re.search(r"VAT \(19%\)\s+\$302\.12", text)
    assert re.search(r"Total USD\s+\$1,892\.25", text)

    # The per-instance breakdown.
    for instance_id, external, cloud, region in INSTANCES:
        assert instance_id in flat
        assert f"{cloud} / {region}" in flat
        if external:
            assert external in flat
    assert "744 core-hours" in flat and "$29.76" in flat

    images = subprocess.run(
        ["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    assert len(images) >= 1, "the logo is not embedded"
    assert images[0].split()[3:5] == ["128", "128"]
    assert "Page 1 of 1" in text


def test_draft_invoice_pdf_in_yen(
    client: TestClient, tenant: Tenant, invoices: Invoices, backend: str
) -> None:
    response = client.get(f"/v1/invoices/{invoices.draft_id}/pdf", headers=tenant.admin)
    assert response.headers["content-disposition"] == 'inline; filename="inv_draft.pdf"'
    pdf = _fetch(client, tenant, invoices.draft_id)
    path = _save(pdf, f"invoice-draft-{backend}")
    text = _pdf_text(pdf, path)
    flat = _squash(text)
    assert "DRAFT — not issued" in flat
    assert "Umbrella KK" in flat and "UM-7" in flat and "Chiyoda-ku" in flat
    assert re.search(r"720\s+¥15\s+¥10,800", text)
    assert re.search(r"2,880\s+¥0\.5\s+¥1,440", text)
    assert re.search(r"Total JPY\s+¥12,240", text)
    assert "¥12,240.00" not in text and "Issue date" in text
    assert "VAT" not in text and "Tax" not in text.replace("Tax ID", "")


def test_long_invoice_spans_pages_with_repeated_headers(
    client: TestClient, tenant: Tenant, invoices: Invoices, backend: str
) -> None:
    pdf = _fetch(client, tenant, invoices.long_id)
    path = _save(pdf, f"invoice-long-{backend}")
    text = _pdf_text(pdf, path)
    pages = text.split("\f")
    assert len([p for p in pages if p.strip()]) >= 2
    assert "Page 1 of" in pages[0] and "Page 2 of" in pages[1]
    # The breakdown's header row is repeated on the page it continues on.
    assert "INSTANCE" in pages[1] and "EXTERNAL BILLING ID" in pages[1]
    assert "pg-prod-eu-1-069" in _squash(text) or "pg-prod-eu-1-069" in text.replace("\n", "")


def test_another_providers_invoice_is_not_found(
    client: TestClient, invoices: Invoices, make_tenant: Callable[[str], Tenant]
) -> None:
    other = make_tenant("Initech Hosting")
    response = client.get(f"/v1/invoices/{invoices.issued_id}/pdf", headers=other.admin)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invoice_not_found"
    assert client.get("/v1/invoices/inv_nope/pdf", headers=other.admin).status_code == 404


def test_svg_logo_renders(
    client: TestClient, tenant: Tenant, invoices: Invoices, factory: sessionmaker[Session]
) -> None:
    put = client.put(
        "/v1/provider/logo", content=SVG, headers={**tenant.admin, "Content-Type": "image/svg+xml"}
    )
    assert put.status_code == 200, put.text
    pdf = _fetch(client, tenant, invoices.issued_id)
    assert b"/XObject" in pdf  # the SVG is drawn as a form, not dropped


def test_formatting() -> None:
    assert money(D("1234.5"), "USD") == "$1,234.50"
    assert money(D("1234"), "JPY") == "¥1,234"
    assert money(D("0.000000000001"), "USD") == "$0.000000000001"
    assert money(D("0.040000000000"), "USD") == "$0.04"
    assert money(D("-3.10"), "EUR") == "-€3.10"
    assert quantity(D("1234567.000000001")) == "1,234,567.000000001"
    assert quantity(D("720.000000000")) == "720"


def test_pdf_cli(
    tenant: Tenant,
    invoices: Invoices,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``meterplane invoices pdf``, mounted here as it is in the real command."""
    monkeypatch.setattr(context, "session_factory", lambda: factory)
    app = typer.Typer()
    app.command("pdf")(pdf_command)
    app.command("other")(lambda: None)  # keeps ``pdf`` a subcommand, as under ``invoices``
    runner = CliRunner()
    out = tmp_path / "invoice.pdf"
    args = ["pdf", invoices.issued_id, "--provider", tenant.provider_id, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    assert "INV-2026-000042" in _pdf_text(out.read_bytes(), out)

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["pdf", invoices.draft_id, "--provider", tenant.provider_id])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inv_draft.pdf").read_bytes().startswith(b"%PDF-")

    result = runner.invoke(app, ["pdf", "inv_nope", "--provider", tenant.provider_id])
    assert result.exit_code == 1
    assert "invoice_not_found" in result.output
