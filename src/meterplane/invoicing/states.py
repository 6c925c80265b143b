"""Invoice states and the one table of legal moves (DESIGN, "Invoices")."""

from enum import StrEnum


class InvoiceStatus(StrEnum):
    draft = "draft"  # the period's grace for late samples runs; recomputed as samples arrive
    pending_approval = "pending_approval"  # frozen for the provider's review
    issued = "issued"
    past_due = "past_due"
    payment_failed = "payment_failed"
    paid = "paid"
    uncollectible = "uncollectible"
    void = "void"


S = InvoiceStatus
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    S.draft: frozenset({S.pending_approval, S.void}),
    S.pending_approval: frozenset({S.issued, S.void}),
    S.issued: frozenset({S.paid, S.past_due, S.payment_failed, S.uncollectible, S.void}),
    S.past_due: frozenset({S.paid, S.payment_failed, S.uncollectible, S.void}),
    S.payment_failed: frozenset({S.paid, S.past_due, S.uncollectible, S.void}),
    S.uncollectible: frozenset({S.paid}),
    S.paid: frozenset(),
    S.void: frozenset(),
}
# Issued and later: the number, lines and totals never change again.
FINAL_CONTENT = frozenset(TRANSITIONS) - {S.draft, S.pending_approval}
OPEN_FOR_PAYMENT = frozenset({S.issued, S.past_due, S.payment_failed})
