"""``GET /v1/invoices/{id}/pdf``: the invoice as its customer receives it."""

from fastapi import APIRouter, Response

from meterplane.api.deps import Admin, Factory, unit_of_work
from meterplane.invoicing.pdf import load_document, render_document

router = APIRouter(prefix="/v1", tags=["invoices"])


@router.get(
    "/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The invoice PDF."}},
)
def get_invoice_pdf(invoice_id: str, caller: Admin, factory: Factory) -> Response:
    """Drafts render too, marked "DRAFT — not issued"; another provider's invoice is a 404."""
    with unit_of_work(factory) as session:
        document = load_document(session, caller.provider_id, invoice_id)
    # Rendered after the transaction ends: WeasyPrint needs no database.
    return Response(
        content=render_document(document),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{document.filename}"',
            "Cache-Control": "private, no-cache",
        },
    )
