"""Writing to the ledger: keyword-only functions, one transaction each."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from ledger.models import ApiToken, AuditEvent, Customer, Invoice, InvoiceStatus, Payment, Role
from rules.allocation import OpenInvoice, allocate
from rules.policy import Segment


@dataclass
class InvoiceRow:
    """One line of a finance team's tracking table, validated."""

    customer_ref: str
    customer_name: str
    number: str
    invoice_date: date
    due_date: date
    amount_cents: int
    currency: str = "EUR"
    status: str = InvoiceStatus.OPEN
    balance_cents: int | None = None
    segment: str = Segment.B2B
    email: str | None = None
    phone: str | None = None
    language: str = "fr"
    country: str = "FR"
    address: str | None = None


@dataclass
class ImportReport:
    customers_created: int = 0
    invoices_created: int = 0
    invoices_existing: int = 0
    open_invoice_ids: list[int] = field(default_factory=list)


def upsert_customer(*, session: Session, row: InvoiceRow,
                    cache: dict[str, Customer] | None = None) -> tuple[Customer, bool]:
    if cache is not None and row.customer_ref in cache:
        return cache[row.customer_ref], False
    customer = session.exec(select(Customer).where(Customer.ref == row.customer_ref)).first()
    created = customer is None
    if customer is None:
        customer = Customer(ref=row.customer_ref, name=row.customer_name, segment=row.segment,
                            email=row.email, phone=row.phone, language=row.language,
                            country=row.country, address=row.address)
        session.add(customer)
        session.flush()
    if cache is not None:
        cache[row.customer_ref] = customer
    return customer, created


def import_invoices(*, session: Session, rows: list[InvoiceRow]) -> ImportReport:
    """Add the rows' customers and invoices; an invoice already there is left as is,
    so running an import twice changes nothing. One transaction for the batch."""
    report = ImportReport()
    customers: dict[str, Customer] = {}
    numbers = [r.number for r in rows]
    existing: dict[str, Invoice] = {}
    for chunk in range(0, len(numbers), 500):
        for inv in session.exec(select(Invoice).where(
                Invoice.number.in_(numbers[chunk:chunk + 500]))):  # type: ignore[attr-defined]
            existing[inv.number] = inv
    new: list[Invoice] = []
    for row in rows:
        if row.number in existing:
            report.invoices_existing += 1
            if existing[row.number].status == InvoiceStatus.OPEN:
                report.open_invoice_ids.append(existing[row.number].id or 0)
            continue
        customer, created = upsert_customer(session=session, row=row, cache=customers)
        report.customers_created += created
        balance = row.amount_cents if row.balance_cents is None else row.balance_cents
        invoice = Invoice(number=row.number, customer_id=customer.id or 0,
                          invoice_date=row.invoice_date, due_date=row.due_date,
                          currency=row.currency, amount_cents=row.amount_cents,
                          balance_cents=0 if row.status == InvoiceStatus.PAID else balance,
                          status=row.status, stage="imported")
        session.add(invoice)
        existing[row.number] = invoice
        new.append(invoice)
    session.flush()
    for invoice in new:
        session.add(AuditEvent(invoice_id=invoice.id, customer_id=invoice.customer_id,
                               kind="invoice_imported", actor="import",
                               detail={"number": invoice.number,
                                       "amount_cents": invoice.amount_cents,
                                       "status": invoice.status}))
        if invoice.status == InvoiceStatus.OPEN:
            report.open_invoice_ids.append(invoice.id or 0)
    report.invoices_created = len(new)
    session.commit()
    return report


def record_payment(*, session: Session, source: str, external_id: str, amount_cents: int,
                   currency: str, invoice_id: int | None,
                   customer_id: int | None = None) -> tuple[Payment, bool]:
    """Store a payment once per (source, external id). Returns (payment, created)."""
    found = session.exec(select(Payment).where(Payment.source == source,
                                               Payment.external_id == external_id)).first()
    if found is not None:
        return found, False
    if invoice_id is not None and customer_id is None:
        invoice = session.get(Invoice, invoice_id)
        customer_id = invoice.customer_id if invoice else None
    payment = Payment(source=source, external_id=external_id, amount_cents=amount_cents,
                      currency=currency, invoice_id=invoice_id, customer_id=customer_id,
                      unapplied_cents=amount_cents if invoice_id is None else 0)
    session.add(payment)
    session.flush()
    session.add(AuditEvent(invoice_id=invoice_id, customer_id=customer_id,
                           kind="payment_received", actor=source,
                           detail={"payment_id": payment.id, "external_id": external_id,
                                   "amount_cents": amount_cents, "currency": currency}))
    session.commit()
    return payment, True


# Payment.external_id holds 128 characters; a split part adds "#<invoice id>".
_SPLIT_PREFIX_MAX = 128 - len("#unapplied") - 1


def split_prefix(external_id: str) -> str:
    """What every part of a split transfer's external id starts with (before "#"):
    the gateway's id, or its SHA-256 when the id is too long to carry a suffix."""
    if len(external_id) <= _SPLIT_PREFIX_MAX:
        return external_id
    return "sha256-" + hashlib.sha256(external_id.encode()).hexdigest()


def split_parts(*, session: Session, source: str, external_id: str) -> list[Payment]:
    """The rows a split transfer was recorded as (empty if it was not)."""
    prefix = split_prefix(external_id) + "#"
    return list(session.exec(select(Payment).where(
        Payment.source == source,
        col(Payment.external_id).startswith(prefix, autoescape=True)).order_by(col(Payment.id))))


def _in_flight(session: Session, invoice_ids: list[int]) -> dict[int, int]:
    """Per invoice, the payments its workflow has not applied yet: the ledger's
    balance does not show them, so a second transfer right after a first one is
    not split over the same balance again."""
    if not invoice_ids:
        return {}
    rows = session.exec(select(Payment.invoice_id, func.sum(Payment.amount_cents)).where(
        col(Payment.invoice_id).in_(invoice_ids), Payment.applied_cents == 0,
        Payment.unapplied_cents == 0).group_by(col(Payment.invoice_id))).all()
    return {int(i): int(cents) for i, cents in rows if i is not None}


@dataclass
class SplitPayment:
    payments: list[Payment]
    rule: str  # rules.allocation's: references | exact_set | oldest_first | none
    created: bool


def record_customer_payment(*, session: Session, source: str, external_id: str,
                            customer_id: int, amount_cents: int, currency: str,
                            references: list[str] | None = None) -> list[Payment]:
    """Split one transfer across the customer's open invoices (rules.allocation):
    one Payment row per invoice (external id `<id>#<invoice>`, so a retried
    webhook records nothing twice) and one for any remainder, left unapplied."""
    return split_customer_payment(session=session, source=source, external_id=external_id,
                                  customer_id=customer_id, amount_cents=amount_cents,
                                  currency=currency, references=references).payments


def split_customer_payment(*, session: Session, source: str, external_id: str,
                           customer_id: int, amount_cents: int, currency: str,
                           references: list[str] | None = None,
                           received_at: datetime | None = None) -> SplitPayment:
    """`record_customer_payment`, saying which rule split it and whether it is new."""
    existing = split_parts(session=session, source=source, external_id=external_id)
    if existing:
        return SplitPayment(existing, "duplicate", False)
    open_invoices = session.exec(select(Invoice).where(
        Invoice.customer_id == customer_id, Invoice.status == InvoiceStatus.OPEN,
        Invoice.currency == currency)).all()
    pending = _in_flight(session, [i.id or 0 for i in open_invoices])
    allocation = allocate(amount_cents, [
        OpenInvoice(i.id or 0, i.number, i.due_date,
                    max(0, i.balance_cents - pending.get(i.id or 0, 0)))
        for i in open_invoices], references)
    prefix = split_prefix(external_id)
    payments = [Payment(source=source, external_id=f"{prefix}#{invoice_id}",
                        invoice_id=invoice_id, customer_id=customer_id, amount_cents=cents,
                        currency=currency) for invoice_id, cents in allocation.parts]
    if allocation.unapplied_cents:
        payments.append(Payment(source=source, external_id=f"{prefix}#unapplied",
                                customer_id=customer_id, currency=currency,
                                amount_cents=allocation.unapplied_cents,
                                unapplied_cents=allocation.unapplied_cents))
    for p in payments:
        p.received_at = received_at or p.received_at
    session.add_all(payments)
    session.flush()
    for p in payments:
        session.add(AuditEvent(invoice_id=p.invoice_id, customer_id=customer_id,
                               kind="payment_received", actor=source,
                               detail={"payment_id": p.id, "external_id": external_id,
                                       "amount_cents": p.amount_cents, "currency": currency,
                                       "split_rule": allocation.rule,
                                       "transfer_cents": amount_cents}))
    session.commit()
    for p in payments:
        session.refresh(p)  # loaded, so the caller can signal them after the session closes
    return SplitPayment(payments, allocation.rule, True)


# --- API tokens ---------------------------------------------------------------

TOKEN_PREFIX = "rlc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(*, session: Session, name: str, role: Role | str) -> tuple[ApiToken, str]:
    """Make a bearer token; returns the row and the token, which is never stored."""
    role = Role(role)
    if not name or len(name) > 64:
        raise ValueError("a token needs a name of 1 to 64 characters")
    if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise ValueError(f"a token named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, role=role, token_hash=hash_token(token))
    session.add(row)
    session.add(AuditEvent(kind="api_token_created", actor="cli",
                           detail={"name": name, "role": role}))
    session.commit()
    session.refresh(row)
    return row, token


def find_api_token(*, session: Session, token: str) -> ApiToken | None:
    """The live token row for a presented bearer token, or None."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row
