"""Retention: anonymise the personal data of closed invoices after a period.

What goes: message recipients, subjects and bodies (the outbox), the same text
copied into audit details, call-task notes and dispute reasons, and, once every
invoice of a customer is closed and old enough, the customer's name, email,
phone and address. What stays: amounts, balances, dates, statuses, steps,
channels, providers' ids, and every audit event (its kind, time and facts), so
the ledger still adds up and the history of what was done is still there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, exists, or_
from sqlmodel import Session, col, select

from ledger.models import (
    AuditEvent,
    CallTask,
    Customer,
    Invoice,
    InvoiceStatus,
    OutboxMessage,
    utcnow,
)

REDACTED = "[anonymised]"
# Audit detail keys that can carry personal data; every other key is a fact kept.
PERSONAL_DETAIL_KEYS = ("recipient", "subject", "text", "notes", "dispute_reason",
                        "name", "email", "phone", "address")
# Free text typed by people; elsewhere "reason" is a code (credit_note, a currency).
FREE_TEXT_REASON_KINDS = ("dispute_opened", "dispute_resolved", "paused", "resumed")


@dataclass
class PurgeReport:
    invoices: int = 0
    messages: int = 0
    audit_events: int = 0
    call_tasks: int = 0
    customers: int = 0


def purgeable_invoice_ids(engine: Engine, *, closed_before: datetime) -> list[int]:
    """Closed invoices (any final status) closed before the cutoff, not yet purged."""
    purged = exists().where(col(AuditEvent.invoice_id) == col(Invoice.id),
                            col(AuditEvent.kind) == "personal_data_purged")
    with Session(engine) as session:
        ids = session.exec(
            select(col(Invoice.id))
            .where(col(Invoice.status) != InvoiceStatus.OPEN)
            .where(col(Invoice.closed_at).is_not(None))
            .where(col(Invoice.closed_at) < closed_before)
            .where(~purged)
            .order_by(col(Invoice.id))
        ).all()
        return [i for i in ids if i is not None]


def _redact_detail(kind: str, detail: dict[str, Any]) -> dict[str, Any] | None:
    personal = PERSONAL_DETAIL_KEYS + (("reason",) if kind in FREE_TEXT_REASON_KINDS else ())
    if not any(detail.get(k) and detail[k] != REDACTED for k in personal):
        return None
    return {k: (REDACTED if k in personal and v else v) for k, v in detail.items()}


def anonymise_invoices(engine: Engine, invoice_ids: list[int], *, older_than_days: int,
                       report: PurgeReport) -> None:
    """One transaction for a batch of invoices; re-running it changes nothing."""
    with Session(engine) as session:
        for invoice_id in invoice_ids:
            invoice = session.get(Invoice, invoice_id)
            assert invoice is not None
            for msg in session.exec(select(OutboxMessage)
                                    .where(col(OutboxMessage.invoice_id) == invoice_id)):
                if msg.recipient or msg.subject or msg.body:
                    msg.recipient, msg.subject, msg.body = None, None, ""
                    session.add(msg)
                    report.messages += 1
            for event in session.exec(select(AuditEvent)
                                      .where(col(AuditEvent.invoice_id) == invoice_id)):
                redacted = _redact_detail(event.kind, event.detail or {})
                if redacted is not None:
                    event.detail = redacted
                    session.add(event)
                    report.audit_events += 1
            tasks = select(CallTask).where(col(CallTask.invoice_id) == invoice_id)
            for task in session.exec(tasks):
                if task.notes:
                    task.notes = None
                    session.add(task)
                    report.call_tasks += 1
            session.add(AuditEvent(
                invoice_id=invoice_id, customer_id=invoice.customer_id,
                kind="personal_data_purged", actor="retention",
                detail={"older_than_days": older_than_days,
                        "closed_at": invoice.closed_at.isoformat() if invoice.closed_at
                        else None},
                dedup_key=f"retention:{invoice_id}"))
            report.invoices += 1
        session.commit()


def anonymise_customers(engine: Engine, *, closed_before: datetime) -> int:
    """Customers whose invoices are all closed before the cutoff lose their identity
    (the reference stays: it is the accounting code the invoices point to)."""
    same_customer = col(Invoice.customer_id) == col(Customer.id)
    recent_or_open = exists().where(
        same_customer,
        or_(col(Invoice.status) == InvoiceStatus.OPEN, col(Invoice.closed_at).is_(None),
            col(Invoice.closed_at) >= closed_before))
    with Session(engine) as session:
        customers = session.exec(
            select(Customer).where(exists().where(same_customer)).where(~recent_or_open)
            .where(or_(col(Customer.email).is_not(None), col(Customer.phone).is_not(None),
                       col(Customer.address).is_not(None), col(Customer.name) != REDACTED))
        ).all()
        for customer in customers:
            customer.name, customer.email, customer.phone, customer.address = (
                REDACTED, None, None, None)
            customer.do_not_contact = True
            session.add(customer)
        session.commit()
        return len(customers)


def batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def purge_personal_data(engine: Engine, *, older_than_days: int, now: datetime | None = None,
                        batch_size: int = 200,
                        progress: Callable[[int], None] | None = None) -> PurgeReport:
    if older_than_days < 0:
        raise ValueError("older_than_days must be zero or more")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    report = PurgeReport()
    for batch in batches(purgeable_invoice_ids(engine, closed_before=cutoff), batch_size):
        anonymise_invoices(engine, batch, older_than_days=older_than_days, report=report)
        if progress:
            progress(len(batch))
    report.customers = anonymise_customers(engine, closed_before=cutoff)
    return report
