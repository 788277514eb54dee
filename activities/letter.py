"""The mise en demeure letter: the claim (principal, interest, 40 EUR) computed by
`rules.late_payment`, rendered from `templates/<lang>/<template>.html.j2` and printed
to an A4 PDF by WeasyPrint, ready for registered post and for the email attachment.

Partial payments are applied to accrued interest first, then to principal
(art. 1343-1 Code civil); the letter says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from activities.rendering import TEMPLATES_DIR, MessageRenderer
from rules.aging import days_overdue
from rules.late_payment import (
    HalfYear,
    InvoiceClaim,
    MissingRateError,
    RateTable,
    Receipt,
    b2b_claim,
    b2c_claim,
    totals,
)


@dataclass(frozen=True)
class InvoiceFacts:
    number: str
    invoice_date: date
    due_date: date
    amount_cents: int
    receipts: tuple[Receipt, ...] = ()


@dataclass(frozen=True)
class LetterDocument:
    filename: str
    html: str
    pdf: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


def claims_for(invoices: Sequence[InvoiceFacts], *, professional: bool, as_of: date,
               rates: RateTable) -> list[InvoiceClaim]:
    """B2B: MRO + 10 points from the day after each due date, 40 EUR per late invoice.
    B2C: nothing accrued yet (legal interest runs from the receipt of this letter)."""
    if professional:
        return [b2b_claim(number=i.number, invoice_date=i.invoice_date, due_date=i.due_date,
                          amount_cents=i.amount_cents, receipts=i.receipts, as_of=as_of,
                          rates=rates) for i in invoices]
    return [b2c_claim(number=i.number, invoice_date=i.invoice_date, due_date=i.due_date,
                      amount_cents=i.amount_cents, receipts=i.receipts, as_of=as_of,
                      rates=rates, notice_received_on=None) for i in invoices]


def claim_context(claims: Sequence[InvoiceClaim], *, professional: bool, as_of: date,
                  rates: RateTable) -> dict[str, Any]:
    """What the letter templates see under `claim`."""
    legal_rate: Decimal | None = None
    if not professional:
        try:
            legal_rate = rates.legal_percent(HalfYear.of(as_of))
        except MissingRateError:
            legal_rate = None  # the letter then names the rate without a figure
    t = totals(claims)
    return {
        "professional": professional,
        "as_of": as_of,
        "legal_rate": legal_rate,
        "invoices": [{
            "number": c.number, "invoice_date": c.invoice_date, "due_date": c.due_date,
            "amount_cents": c.amount_cents, "paid_cents": c.paid_cents,
            "principal_cents": c.principal_cents, "interest_cents": c.interest_cents,
            "indemnity_cents": c.indemnity_cents, "interest_paid_cents": c.interest_paid_cents,
            "total_cents": c.total_cents,
            "days_late": days_overdue(c.due_date, as_of),
            # The rates used, in order (a period straddling half-years has two).
            "rates": list(dict.fromkeys(s.rate_percent for s in c.segments)),
            "segments": [{"first_day": s.first_day, "last_day": s.last_day, "days": s.days,
                          "rate": s.rate_percent, "half_year": s.half_year,
                          "principal_cents": s.principal_cents,
                          "interest_cents": s.interest_cents} for s in c.segments],
        } for c in claims],
        "principal_cents": t.principal_cents,
        "interest_cents": t.interest_cents,
        "indemnity_cents": t.indemnity_cents,
        "total_cents": t.total_cents,
    }


class LetterComposer:
    def __init__(self, renderer: MessageRenderer) -> None:
        self.renderer = renderer

    def has_letter(self, template: str, language: str) -> bool:
        lang = self.renderer.language(language)
        return self.renderer.has_template(f"{lang}/{template}.letter.html.j2")

    def compose(self, template: str, language: str, context: dict[str, Any],
                filename: str) -> LetterDocument:
        html = self.renderer.render_html(template, "letter", language, context)
        from weasyprint import HTML  # on the first letter: a worker that sends none never loads it

        pdf = HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()
        assert pdf is not None
        return LetterDocument(filename=filename, html=html, pdf=pdf)
